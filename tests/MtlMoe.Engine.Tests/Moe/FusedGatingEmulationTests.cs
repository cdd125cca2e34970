using MtlMoe.Engine;
using MtlMoe.Engine.MoE;

namespace MtlMoe.Tests.Moe;

/// <summary>
/// The fused gating pass's algorithm (FusedGatingEmulation, a lane-by-lane C# copy of moe_gating_fused_f32 and its
/// backward) against the CPU reference gating + composed aux loss + autograd, on random inputs with ties, for the
/// shapes the kernel takes (E ≤ 64, k ≤ 8), batch sizes around the block (64 rows) and group (32 blocks) edges.
/// This checks the selection and tie rule, the partition and fixed summation order, the CV² gradient and the
/// threshold gradients before any GPU runs the PTX; the GPU parity test of phase 2 checks the PTX itself.
/// </summary>
public class FusedGatingEmulationTests
{
    const float WImp = 0.01f, WLoad = 0.02f;

    // Row r of every fifth row: clean on the grid {−1, 0, 1} with ε = 0, so noisy = clean exactly in float and in
    // double, and equal values (ties) are common; the other rows random.
    static (float[] Clean, float[]? Raw, float[]? Eps) Inputs(int b, int e, bool noisy, int seed)
    {
        var rng = new Rng((ulong)seed);
        var c = new float[b * e]; var r = noisy ? new float[b * e] : null; var n = noisy ? new float[b * e] : null;
        for (int i = 0; i < b; i++)
            for (int x = 0; x < e; x++)
            {
                bool tie = i % 5 == 0;
                c[i * e + x] = tie ? rng.NextInt(3) - 1 : (float)rng.NextGaussian();
                if (noisy) { r![i * e + x] = (float)rng.NextGaussian(); n![i * e + x] = tie ? 0f : (float)rng.NextGaussian(); }
            }
        return (c, r, n);
    }

    static void AssertClose(string what, float[] want, float[] got, double tol)
    {
        Assert.That(got, Has.Length.EqualTo(want.Length), what);
        double scale = 1e-6, worst = 0; int at = -1;
        foreach (var v in want) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 0; i < want.Length; i++)
        {
            Assert.That(float.IsNaN(got[i]), Is.False, $"{what}[{i}] is NaN");
            double d = Math.Abs(want[i] - got[i]) / scale;
            if (d > worst) { worst = d; at = i; }
        }
        Assert.That(worst, Is.LessThanOrEqualTo(tol), $"{what}: worst relative error {worst:E2} at {at} (want {(at >= 0 ? want[at] : 0)}, got {(at >= 0 ? got[at] : 0)})");
    }

    static readonly object[] Shapes =
    [
        new object[] { 1, 4, 1, true },
        new object[] { 63, 16, 2, true },
        new object[] { 65, 64, 2, true },
        new object[] { 200, 33, 3, true },
        new object[] { 130, 12, 8, true },
        new object[] { 96, 4, 4, true },     // k = E: load is the routed count
        new object[] { 77, 16, 2, false },   // noiseless
        new object[] { 2 * 2048 + 77, 8, 2, true },   // three groups, the last one partial
    ];

    [TestCaseSource(nameof(Shapes))]
    public void ForwardAndBackwardMatchTheCpuReference(int b, int e, int k, bool noisy)
    {
        var (c, r, n) = Inputs(b, e, noisy, 100 + b + e + k);
        var emu = new FusedGatingEmulation(c, r, n, b, e, k);
        var fwd = emu.RunForward(WImp, WLoad);

        using var scope = DisposeScope.Begin();
        var clean = Tensor.FromArray(c, [b, e]); clean.RequiresGrad = true;
        var raw = r is null ? null : Tensor.FromArray(r, [b, e]);
        if (raw is not null) raw.RequiresGrad = true;
        var eps = n is null ? null : Tensor.FromArray(n, [b, e]);
        var g = MoeOps.NoisyTopKGating(clean, raw, eps, k);
        var aux = MoeOps.AuxLoss(g, WImp, WLoad);

        Assert.That(fwd.TopIdx, Is.EqualTo(g.TopIndices.ToArray<int>()), "chosen experts (ties → lower index)");
        var packed = g.Packed.ToArray<float>();
        AssertClose("gates", packed[..(b * e)], fwd.Packed[..(b * e)], 2e-6);
        AssertClose("importance", packed[(b * e)..((b + 1) * e)], fwd.Packed[(b * e)..((b + 1) * e)], 1e-5);
        AssertClose("load", packed[((b + 1) * e)..], fwd.Packed[((b + 1) * e)..], 1e-5);
        AssertClose("aux", [(float)aux.Item()], [fwd.Aux], 1e-4);
        var topGates = new float[b * k];
        for (int i = 0; i < b; i++) for (int j = 0; j < k; j++) topGates[i * k + j] = fwd.Packed[i * e + fwd.TopIdx[i * k + j]];
        Assert.That(fwd.TopGates, Is.EqualTo(topGates), "top_gates are the gates of top_idx");

        // Upstream: a random weight on every packed element (gates, importance, load) plus 3·aux.
        var w = new float[(b + 2) * e];
        var wr = new Rng(9);
        for (int i = 0; i < w.Length; i++) w[i] = (float)wr.NextGaussian();
        var loss = Ops.Add(Ops.Sum(Ops.Mul(g.Packed, Tensor.FromArray(w, [b + 2, e]))), Ops.MulScalar(aux, 3));
        loss.Backward();
        var (gc, gr) = emu.RunBackward(fwd.Packed, w, 3f, WImp, WLoad);
        AssertClose("d clean", clean.Grad!.ToArray<float>(), gc, 1e-4);
        if (noisy) AssertClose("d raw", raw!.Grad!.ToArray<float>(), gr!, 1e-4);
        else Assert.That(gr, Is.Null);
    }

    [Test]
    public void AuxGradientAloneMatchesTheComposedAux()
    {
        // Only the aux loss carries gradient: checks ∂CV²/∂v folded into the per-row backward.
        const int b = 300, e = 16, k = 2;
        var (c, r, n) = Inputs(b, e, true, 5);
        var emu = new FusedGatingEmulation(c, r, n, b, e, k);
        var fwd = emu.RunForward(WImp, WLoad);
        using var scope = DisposeScope.Begin();
        var clean = Tensor.FromArray(c, [b, e]); clean.RequiresGrad = true;
        var raw = Tensor.FromArray(r!, [b, e]); raw.RequiresGrad = true;
        var g = MoeOps.NoisyTopKGating(clean, raw, Tensor.FromArray(n!, [b, e]), k);
        MoeOps.AuxLoss(g, WImp, WLoad).Backward();
        var (gc, gr) = emu.RunBackward(fwd.Packed, null, 1f, WImp, WLoad);
        Assert.That(gc.Max(Math.Abs), Is.GreaterThan(0f), "the aux loss has a gradient");
        AssertClose("d clean", clean.Grad!.ToArray<float>(), gc, 1e-4);
        AssertClose("d raw", raw.Grad!.ToArray<float>(), gr!, 1e-4);
    }

    [Test]
    public void ElectionOrderChangesNothingAndLeavesTheCountersZero()
    {
        const int b = 3 * 2048 + 5, e = 8, k = 2;   // 97 blocks in 4 groups, the last with one block
        var (c, r, n) = Inputs(b, e, true, 17);
        var emu = new FusedGatingEmulation(c, r, n, b, e, k);
        Assert.That((emu.Blocks, emu.Groups), Is.EqualTo((97, 4)));
        var inOrder = emu.RunForward(WImp, WLoad);
        var rng = new Random(4);
        for (int trial = 0; trial < 5; trial++)
        {
            var order = Enumerable.Range(0, emu.Blocks).OrderBy(_ => rng.Next()).ToArray();
            var f = emu.RunForward(WImp, WLoad, order);
            Assert.That(f.GroupElections, Is.EqualTo(emu.Groups), "one elected block per group");
            Assert.That(f.FinalElections, Is.EqualTo(1), "one final block");
            Assert.That(f.CountersAfter, Is.All.Zero, "counters reset for the next launch");
            Assert.That(f.Packed.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(inOrder.Packed.Select(BitConverter.SingleToInt32Bits)));
            Assert.That(BitConverter.SingleToInt32Bits(f.Aux), Is.EqualTo(BitConverter.SingleToInt32Bits(inOrder.Aux)));
        }
    }

    [Test]
    public void TiesGoToTheLowerExpertIndexAcrossBothLaneHalves()
    {
        // Expert 40 (lane 8, upper half) and expert 3 (lane 3, lower half) tie for the max; expert 35 and 60 tie next.
        const int e = 64;
        var c = new float[e];
        c[40] = 2; c[3] = 2; c[35] = 1; c[60] = 1;
        for (int x = 0; x < e; x++) if (c[x] == 0) c[x] = -1;
        var emu = new FusedGatingEmulation(c, null, null, 1, e, 3);
        var row = emu.ComputeRow(0);
        Assert.That(row.TopI, Is.EqualTo(new[] { 3, 40, 35, 60 }));
        using var g = MoeOps.NoisyTopKGating(Tensor.FromArray(c, [1, e]), null, null, 3);
        Assert.That(g.TopIndices.ToArray<int>(), Is.EqualTo(new[] { 3, 40, 35 }));
    }
}
