namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// The CPU backend's code paths that options can switch off by name (<see cref="CpuBackendOptions.Disabled"/>): the conv
/// algorithms of the algorithm table (engine/Backends/Cpu/Conv) and the fast paths inside kernels. With a path off the
/// backend takes the next choice (the next row of the conv table, or the plain loop a fast path replaces); results stay
/// within the tolerances the tests check, and the plain paths are what the fast ones are tested against.
/// </summary>
[Flags]
internal enum CpuPath : uint
{
    None = 0,
    ImplicitGemm = 1u << 0,
    ImplicitGemmStride2 = 1u << 1,
    ImplicitGemmStride2BackwardData = 1u << 2,
    PointwiseStride2Gemm = 1u << 3,
    BlockedBackwardWeights = 1u << 4,
    TiledBands = 1u << 5,
    BackwardDataAsForward = 1u << 6,
    ImplicitPackedChunks = 1u << 7,
    TiledStrided1x1BackwardData = 1u << 8,
    Im2ColPacked = 1u << 9,
    Im2ColVec = 1u << 10,
    Im2ColSameVec = 1u << 11,
    Col2ImVec = 1u << 12,
    KernelFlipVec = 1u << 13,
    MaxPoolVec = 1u << 14,
    VectorElementwise = 1u << 15,
    BnStatsOnePass = 1u << 16,
    BnAddReluFused = 1u << 17,
    GemmPackedBlocksAlone = 1u << 18,
    WorkerTeam = 1u << 19,
}

/// <summary>One switchable path: its name (as options, <c>MTLMOE_CPU_DISABLE</c> and Bench's <c>--ab</c> spell it), whether it is a conv algorithm of the table, and what it does.</summary>
/// <param name="Name">The name, e.g. "implicit-gemm-stride2-backward-data".</param>
/// <param name="ConvAlgorithm">True for a row of the conv algorithm table; false for a fast path inside a kernel.</param>
/// <param name="Summary">One line on what it is and what runs without it.</param>
public sealed record CpuPathInfo(string Name, bool ConvAlgorithm, string Summary);

/// <summary>The names of <see cref="CpuPath"/>, in the order they are listed.</summary>
internal static class CpuPaths
{
    internal static readonly (CpuPath Path, CpuPathInfo Info)[] All =
    [
        (CpuPath.ImplicitGemm, new("implicit-gemm", true, "stride-1 convs with Wo = W as an implicit GEMM (forward, and backward-data run as a forward)")),
        (CpuPath.ImplicitGemmStride2, new("implicit-gemm-stride2", true, "stride-2 forward with an odd kernel over x's four phase planes")),
        (CpuPath.ImplicitGemmStride2BackwardData, new("implicit-gemm-stride2-backward-data", true, "3×3 stride-2 backward-data as four phase GEMMs over dy")),
        (CpuPath.PointwiseStride2Gemm, new("pointwise-stride2-gemm", true, "1×1 stride-2 convs as one GEMM over all images' positions")),
        (CpuPath.BlockedBackwardWeights, new("blocked-backward-weights", true, "3×3 and 7×7-stem backward-weights without a column matrix")),
        (CpuPath.TiledBands, new("tiled-bands", true, "per-image bands of an L2-sized column tile and a one-thread GEMM (planes of 192+ outputs)")),
        (CpuPath.BackwardDataAsForward, new("backward-data-as-forward", false, "stride-1 backward-data as a forward conv with the kernel flipped (else col2im)")),
        (CpuPath.ImplicitPackedChunks, new("implicit-packed-chunks", false, "implicit GEMMs lay 16-lane chunks end to end over the images for planes such as 7²")),
        (CpuPath.TiledStrided1x1BackwardData, new("tiled-strided-1x1-backward-data", false, "strided 1×1 backward-data goes per image (tiled bands) at every plane size")),
        (CpuPath.Im2ColPacked, new("im2col-packed", false, "the unfold writes the GEMM's packed-B layout (else a plain column matrix the GEMM packs)")),
        (CpuPath.Im2ColVec, new("im2col-vec", false, "AVX-512 unfold at column stride 2")),
        (CpuPath.Im2ColSameVec, new("im2col-same-vec", false, "AVX-512 unfold of stride-1 convs with Wo = W (masked loads per 16 outputs)")),
        (CpuPath.Col2ImVec, new("col2im-vec", false, "AVX-512 fold at column stride 2")),
        (CpuPath.KernelFlipVec, new("kernel-flip-vec", false, "AVX-512 lane reversal in the kernel flip of backward-data")),
        (CpuPath.MaxPoolVec, new("maxpool-vec", false, "AVX-512 max-pool forward")),
        (CpuPath.VectorElementwise, new("vector-elementwise", false, "the vector loop of the fused ReLU backward (else its scalar loop)")),
        (CpuPath.BnStatsOnePass, new("bn-stats-one-pass", false, "batch-norm statistics in one sweep (else a sum pass, then a squared-deviation pass)")),
        (CpuPath.BnAddReluFused, new("bn-add-relu-fused", false, "batch-norm + residual + ReLU (a block's tail) in one pass (else three primitives)")),
        (CpuPath.GemmPackedBlocksAlone, new("gemm-packed-blocks-alone", false, "a GEMM with a caller-packed B gives each item whole-K blocks, no barrier per KC step")),
        (CpuPath.WorkerTeam, new("worker-team", false, "parallel regions on a team of spinning helper threads (else Parallel.For)")),
    ];

    /// <summary>The flag of <paramref name="name"/>; throws naming every known name when there is none.</summary>
    internal static CpuPath Parse(string name)
    {
        foreach (var (path, info) in All)
            if (string.Equals(info.Name, name, StringComparison.Ordinal)) return path;
        throw new ArgumentException($"cpu options: unknown path '{name}' (known: {string.Join(", ", All.Select(a => a.Info.Name))})");
    }

    /// <summary>The name of a single flag.</summary>
    internal static string Name(CpuPath path) => All.First(a => a.Path == path).Info.Name;
}
