using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using static MtlMoe.Engine.Backends.Cpu.Conv.Shared.ImplicitGemmKernel;

namespace MtlMoe.Engine.Backends.Cpu.Conv;

// Implicit GEMM, stride 1 ("implicit-gemm").
//
// The idea: for a stride-1 conv whose output rows are as wide as its input rows (Wo = W: every 3×3/pad-1 conv of a
// ResNet), row (c, tap) of the column matrix is channel c's input plane shifted by a constant, so the GEMM's 8×32
// micro-kernel reads its B operand straight from x with one masked load per 16 outputs: no column matrix is written or
// packed (Shared/ImplicitGemmKernel.cs). Planes that fill their 16-lane chunks poorly (7²) lay the chunks end to end over
// the images (Shared/PackedChunks.cs). Stride-1 backward-data runs here as a forward conv of dy with the kernel flipped
// (the table's "backward-data-as-forward"), packed straight from the layer's kernel with its taps reversed.
//
// Where it wins (in-process A/B against unfold + GEMM, float32, batch 16, 2 cores of an AVX-512 EPYC): forward
// 1.17–1.72× and backward-data 1.21–1.68× on the ResNet shapes from 4² to 56² planes; the whole ResNet-18 step
// 1.14–1.17× with the implicit family on. K blocks of 576 column rows (64 channels of a 3×3) against 288: stride-1
// forward 1.09–1.11× and backward-data 1.05–1.06× at 28². Chunks end to end (7²): forward 1.07–1.19×, backward-data
// 1.07–1.18×.
//
// Applies: float32, AVX-512, groups 1, stride 1, Wo = W, more than one tap, and at least ImplicitMinLaneUse (0.7) of
// the plane's chunk lanes are outputs (3² at 0.56 is left to the GEMM paths).
//
// Tested against: the float64 direct convolution, all passes, both chunk layouts, thread counts bit-identical
// (tests/MtlMoe.Engine.Tests/CpuPerf/ConvImplicitTests.cs).
internal sealed class ImplicitGemm : IConvAlgorithm
{
    public static readonly ImplicitGemm Instance = new();

    public string Name => "implicit-gemm";

    public bool Applies(in ConvPlan p, ConvPass pass) =>
        pass == ConvPass.Forward && p.DType == DType.Float32 && p.On(CpuPath.ImplicitGemm) && Avx512F.IsSupported
        && p.G == 1 && p.Geo.StrideH == 1 && p.Geo.StrideW == 1 && p.Wo == p.W
        && p.Kh * p.Kw > 1 && p.OutPlane > 0 && LaneUse(p.OutPlane) >= p.Options.ImplicitMinLaneUse;

    public bool NeedsClearedOutput(ConvPass pass) => false;

    public bool ReadsFlippedWeights => true;

    public void Run<T>(in ConvPlan p, ConvPass pass, in ConvArgs<T> a) where T : unmanaged, INumber<T> =>
        Forward((float[])(object)a.A, a.AOffset, (float[])(object)a.B, a.BOffset, (float[])(object)a.Out, p, a.FlippedWeights);

    /// <summary>
    /// y [N, O, Ho, Wo] = conv(x [N, C, H, W] at xo, w [O, C, kh, kw] at wo). With <paramref name="flipped"/>, w at wo is
    /// stored [C, O, kh, kw] and used with its taps reversed (w′[o, c, t] = w[c, o, kh·kw − 1 − t]): stride-1
    /// backward-data as a forward, packed straight from the layer's kernel without a flipped copy.
    /// </summary>
    private static void Forward(float[] x, int xo, float[] w, int wo, float[] y, in ConvPlan p, bool flipped)
    {
        int kk = p.Kh * p.Kw, perImage = (p.OutPlane + L - 1) / L, threads = p.Options.Threads;
        var shifts = new int[kk];
        for (int t = 0; t < kk; t++) shifts[t] = Im2ColSameVec.Shift(p, t);
        var masks = Im2ColSameVec.Masks(p, 0, p.Ho, perImage);
        if (UsePacked(p) && p.InPlane == p.OutPlane)
        {
            var side = ImagesSideBySide(p.Options, x, xo, p.N, p.C, p.InPlane); // side: [C, N, H·W]
            try { ImplicitGemmKernel.Run(new Source(side, 0, p.InPlane, p.N * p.InPlane, shifts, masks), w, wo, flipped, y, p, threads); }
            finally { ArrayPool<float>.Shared.Return(side); }
            return;
        }
        ImplicitGemmKernel.Run(new Source(x, xo, p.C * p.InPlane, p.InPlane, shifts, masks), w, wo, flipped, y, p, threads);
    }
}
