namespace MtlMoe.Engine.Backends.Cpu.Conv;

/// <summary>
/// The CPU conv algorithm table: the algorithms in the order they are asked, and the choice for a (plan, pass). The first
/// row that applies runs; the generic unfold + GEMM, last, takes every plan. One table serves all three passes: each
/// algorithm says which passes it computes, and where two could take the same pass the faster one on the shapes it takes
/// comes first (the 1×1 stride-2 GEMM after the phase-plane forward and the stride-2 backward-data, which leave it the
/// 1×1 convs they do not want; before the blocked backward-weights, which does not take 1×1 kernels).
/// <para>
/// Before the table is asked, stride-1 backward-data (dilation 1, padding at most kernel − 1) is rewritten as a forward
/// conv of dy with the kernel flipped and the channels swapped, padding k − 1 − p ("backward-data-as-forward"): it then
/// takes the forward's algorithms (the implicit GEMM reads the flipped kernel in place; the others get a flipped copy),
/// instead of col2im, whose short row adds dominate on small planes.
/// </para>
/// </summary>
internal static class ConvAlgorithms
{
    /// <summary>The rows, in the order they are asked.</summary>
    public static readonly IConvAlgorithm[] Table =
    [
        ImplicitGemm.Instance,                     // forward, stride 1, Wo = W
        ImplicitGemmStride2.Instance,              // forward, stride 2, odd kernel ≤ 7×7
        ImplicitGemmStride2BackwardData.Instance,  // backward-data, 3×3 stride 2
        PointwiseStride2Gemm.Instance,             // 1×1 stride 2, all passes
        BlockedBackwardWeights.Instance,           // backward-weights, 3×3 and the 7×7 stem
        TiledBands.Instance,                       // planes of 192+ outputs, strided 1×1 backward-data
        UnfoldGemm.Instance,                       // everything
    ];

    /// <summary>
    /// The algorithm for <paramref name="pass"/> of <paramref name="p"/>, and the plan and pass it runs: the same ones,
    /// or — for stride-1 backward-data taken as a forward — the forward plan of dy with the flipped kernel
    /// (<see cref="ConvChoice.ViaForward"/>). The plan must have outputs (N &gt; 0, Ho·Wo &gt; 0).
    /// </summary>
    public static ConvChoice Choose(in ConvPlan p, ConvPass pass)
    {
        if (pass == ConvPass.BackwardData && BackwardDataAsForward(p))
        {
            var forward = FlippedForwardPlan(p);
            return new ConvChoice(First(forward, ConvPass.Forward), forward, ConvPass.Forward, ViaForward: true);
        }
        return new ConvChoice(First(p, pass), p, pass, ViaForward: false);
    }

    /// <summary>Whether stride-1 backward-data of <paramref name="p"/> runs as a forward conv with the kernel flipped.</summary>
    public static bool BackwardDataAsForward(in ConvPlan p) => p.On(CpuPath.BackwardDataAsForward)
        && p.Geo is { StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1 } && p.Geo.PadH <= p.Kh - 1 && p.Geo.PadW <= p.Kw - 1;

    /// <summary>
    /// dx = conv2d(dy, w′, padding k − 1 − p) with w′[g·Cg + c, o, i, j] = w[g·Og + o, c, kh−1−i, kw−1−j]: the forward plan
    /// over dy [N, O, Ho, Wo] with the kernel [C, Og, kh, kw].
    /// </summary>
    public static ConvPlan FlippedForwardPlan(in ConvPlan p) =>
        new([p.N, p.O, p.Ho, p.Wo], [p.C, p.Og, p.Kh, p.Kw], new Conv2dGeometry(1, 1, p.Kh - 1 - p.Geo.PadH, p.Kw - 1 - p.Geo.PadW, 1, 1, p.G),
            p.DType, p.Options);

    private static IConvAlgorithm First(in ConvPlan p, ConvPass pass)
    {
        foreach (var a in Table)
            if (a.Applies(p, pass)) return a;
        throw new InvalidOperationException($"conv2d: no algorithm for {pass} of {p}"); // unreachable: unfold + GEMM takes every plan
    }
}

/// <summary>What the table chose: the algorithm, and the plan and pass it runs (a forward of dy when <paramref name="ViaForward"/>).</summary>
internal readonly record struct ConvChoice(IConvAlgorithm Algorithm, ConvPlan Plan, ConvPass Pass, bool ViaForward);
