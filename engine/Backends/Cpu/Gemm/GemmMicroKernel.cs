using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu.Gemm;

/// <summary>
/// The float32 AVX-512 GEMM micro-kernel on its own (an MR×NR tile of C from a kc-deep A sliver and B sliver), for
/// measuring the ceiling the blocked GEMM and the convolutions can reach (tools/Bench <c>peak</c>). Not a GEMM API:
/// use <see cref="CpuGemm"/> for products.
/// </summary>
public static unsafe class GemmMicroKernel
{
    /// <summary>Whether this CPU runs the kernel (AVX-512F).</summary>
    public static bool IsSupported => Avx512F.IsSupported;

    /// <summary>Rows of the C tile (and of an A sliver).</summary>
    public static int MR => Avx512Kernel<float>.MR;

    /// <summary>Columns of the C tile (and of a B sliver).</summary>
    public static int NR => Avx512Kernel<float>.NR;

    /// <summary>
    /// c [MR, NR] (row stride NR) += a · b over kc steps: a is kc × MR (step-major), b kc × NR. The caller checks
    /// <see cref="IsSupported"/> and owns buffers of at least MR·kc, NR·kc and MR·NR floats.
    /// </summary>
    public static void Run(int kc, float* a, float* b, float* c) => Avx512Kernel<float>.Run(kc, a, b, NR, c, NR, 1f, 1f, false);
}
