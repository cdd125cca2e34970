using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using static MtlMoe.Engine.Backends.Cpu.Conv.Shared.ImplicitGemmKernel;

namespace MtlMoe.Engine.Backends.Cpu.Conv;

// Implicit GEMM over phase planes, stride-2 forward ("implicit-gemm-stride2").
//
// The idea: x is split once into its four phase planes (even/odd rows × even/odd columns, each Ho×Wo with Ho = ⌈H/2⌉,
// Wo = ⌈W/2⌉; two permutes per 32 input columns, Shared/PhasePlanes.cs). Every tap of an odd kernel with padding
// kernel/2 then reads one phase plane shifted by whole phase rows/columns (3×3: 0 or −1; 7×7: −2 … +1), so the stride-1
// implicit-GEMM kernel runs over a copy the size of x instead of an unfold kh·kw/4 its size. For odd H (W) the odd
// phases' last row (column) lies past x and is zero: the bottom (right) padding. A 1×1 kernel reads only the even/even
// phase, and only the phases a kernel reads are split. Planes that fill their chunks poorly split straight into the
// images-side-by-side layout of the packed chunks.
//
// Where it wins (in-process A/B against the stride-2 unfold + GEMM, float32, batch 16): 3×3 1.10–1.15× at 28²/14²/56²
// inputs and 1.16–1.17× at 7²; the 7×7 stem 1.35×; 1×1 1.07–1.11× at 28². At 14² → 7² a 1×1 conv measured 0.86–1.0×
// (a tenth of a 3×3's work over the same split; the two-image stores cost more than the unfold saves), so a 1×1 conv
// whose planes take the packed chunks is left to the 1×1 stride-2 GEMM.
//
// Applies: float32, AVX-512, groups 1, stride 2, dilation 1, an odd kernel up to 7×7 with padding kernel/2, any H and W,
// lane use at least ImplicitMinLaneUse; a 1×1 kernel only where the planes do not take the packed chunks.
//
// Tested against: the float64 direct convolution (tests/MtlMoe.Engine.Tests/CpuPerf/ConvImplicitTests.cs).
internal sealed class ImplicitGemmStride2 : IConvAlgorithm
{
    public static readonly ImplicitGemmStride2 Instance = new();

    public string Name => "implicit-gemm-stride2";

    public bool Applies(in ConvPlan p, ConvPass pass) =>
        pass == ConvPass.Forward && p.DType == DType.Float32 && p.On(CpuPath.ImplicitGemmStride2) && Avx512F.IsSupported
        && p.G == 1 && p.Kh % 2 == 1 && p.Kw % 2 == 1
        && p.Kh <= 7 && p.Kw <= 7 && p.Geo.PadH == p.Kh / 2 && p.Geo.PadW == p.Kw / 2
        && p.Geo is { StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1 }
        && p.N > 0 && p.OutPlane > 0 && LaneUse(p.OutPlane) >= p.Options.ImplicitMinLaneUse
        && (p.Kh * p.Kw > 1 || !UsePacked(p));

    public bool NeedsClearedOutput(ConvPass pass) => false;

    public void Run<T>(in ConvPlan p, ConvPass pass, in ConvArgs<T> a) where T : unmanaged, INumber<T> =>
        Forward((float[])(object)a.A, a.AOffset, (float[])(object)a.B, a.BOffset, (float[])(object)a.Out, p);

    // y [N, O, Ho, Wo] = conv(x [N, C, H, W] at xo, w [O, C, kh, kw] at wo) through x's phase planes.
    private static void Forward(float[] x, int xo, float[] w, int wo, float[] y, ConvPlan p)
    {
        int plane = p.OutPlane, perImage = (plane + L - 1) / L;
        // phases: [N, 4, C, Ho·Wo], phase = 2·(row odd) + (column odd); or [4, C, N, Ho·Wo] (images side by side) for packed chunks
        bool side = UsePacked(p);
        int imageStride = side ? plane : 4 * p.C * plane, channelStride = side ? p.N * plane : plane, phaseStride = side ? p.C * p.N * plane : p.C * plane;
        var phases = ArrayPool<float>.Shared.Rent(4 * p.N * p.C * plane);
        try
        {
            StridedIter.ParallelChunks(p.Options, (long)p.N * p.C, 4L * plane,
                (lo, hi) => PhasePlanes.Split(x, xo, phases, imageStride, channelStride, phaseStride, p.Kh > 1, p.Kw > 1, p, (int)lo, (int)hi));
            // Tap (i, j) reads input row 2·oh + r with r = i − padH = 2·di + parity: row oh + di of the phase planes of that
            // parity (3×3: i = 1 an even row, i = 0 the odd row one up, i = 2 the odd row level); columns alike.
            int kk = p.Kh * p.Kw;
            var shifts = new int[kk];
            var masks = new ushort[kk * perImage];
            for (int t = 0; t < kk; t++)
            {
                int ri = t / p.Kw - p.Geo.PadH, rj = t % p.Kw - p.Geo.PadW, pi = ri & 1, pj = rj & 1, di = (ri - pi) / 2, dj = (rj - pj) / 2;
                shifts[t] = (2 * pi + pj) * phaseStride + di * p.Wo + dj;
                for (int q = 0; q < plane; q++)
                    if ((uint)(q / p.Wo + di) < (uint)p.Ho && (uint)(q % p.Wo + dj) < (uint)p.Wo) masks[t * perImage + q / L] |= (ushort)(1 << (q % L));
            }
            ImplicitGemmKernel.Run(new Source(phases, 0, imageStride, channelStride, shifts, masks), w, wo, false, y, p, p.Options.Threads);
        }
        finally { ArrayPool<float>.Shared.Return(phases); }
    }
}
