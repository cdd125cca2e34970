using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using static MtlMoe.Engine.Backends.Cpu.Conv.Shared.ImplicitGemmKernel;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu.Conv;

// Stride-2 backward-data as four phase GEMMs ("implicit-gemm-stride2-backward-data").
//
// The idea: dx[2a + py, 2b + px] of a 3×3 stride-2 pad-1 conv only meets the kernel rows i ≡ py + 1 (mod 2) and columns
// j ≡ px + 1: for py = 0 row i = 1 at dy row a; for py = 1 row i = 0 at dy row a + 1 and row i = 2 at dy row a (columns
// alike). So each phase of dx is a stride-1 conv of dy (Ho×Wo planes) with 1, 2, 2 or 4 taps that read dy shifted by 0
// or +1 row/column: the implicit-GEMM kernel's masked loads, and no col2im. Each (dy channel, 8 dx channels) block of w
// is transposed once for all four phases; the phases go to a buffer and are interleaved into dx with two permutes per
// 32 columns (Shared/PhasePlanes.cs), so every dx element is written once. K is blocked by 144 dy channels.
//
// Where it wins (in-process A/B against the unfold + GEMM with col2im, float32, batch 16): 1.48× at 28², 1.31× at 14²,
// 1.65× at 7² inputs; 144-channel K blocks against 72: 1.03–1.08× (six interleaved runs at 28²/14²/7²). Generalised to
// 1×1 and 7×7 kernels it was slower (0.69–1.05× and 0.61–0.63×, the stem's dx having 3 channels for the 8-row tiles),
// so it takes only 3×3.
//
// Applies: float32, AVX-512, groups 1, 3×3, stride 2, padding 1, dilation 1, any H and W, lane use at least
// ImplicitMinLaneUse.
//
// Tested against: the float64 direct convolution (tests/MtlMoe.Engine.Tests/CpuPerf/ConvImplicitTests.cs).
internal sealed unsafe class ImplicitGemmStride2BackwardData : IConvAlgorithm
{
    public static readonly ImplicitGemmStride2BackwardData Instance = new();

    public string Name => "implicit-gemm-stride2-backward-data";

    public bool Applies(in ConvPlan p, ConvPass pass) =>
        pass == ConvPass.BackwardData && p.DType == DType.Float32 && p.On(CpuPath.ImplicitGemmStride2BackwardData) && Avx512F.IsSupported
        && p.G == 1 && p.Kh == 3 && p.Kw == 3
        && p.Geo is { StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, DilationH: 1, DilationW: 1 }
        && p.N > 0 && p.OutPlane > 0 && LaneUse(p.OutPlane) >= p.Options.ImplicitMinLaneUse;

    // Phase f = 2·py + px; its taps (kernel index 3i + j) and their dy offsets (+1 row, +1 column or neither).
    private static readonly int[][] PhaseTaps = [[4], [3, 5], [1, 7], [0, 2, 6, 8]];
    private static readonly (int Row, int Col)[][] PhaseOffsets =
        [[(0, 0)], [(0, 1), (0, 0)], [(1, 0), (0, 0)], [(1, 1), (1, 0), (0, 1), (0, 0)]];

    /// <summary>
    /// Dy channels per K block (the four-tap phase 576 rows deep, the one-tap phase 144). Against 72, whose one-tap sums
    /// paid the tile's stores and masks too often: 1.03–1.08× (medians of six interleaved runs at 28²/14²/7² inputs);
    /// 288 was no better than 144.
    /// </summary>
    private const int PhaseKcChannels = 144;

    [ThreadStatic] private static float[]? _phaseA;

    public bool NeedsClearedOutput(ConvPass pass) => false;

    public void Run<T>(in ConvPlan p, ConvPass pass, in ConvArgs<T> a) where T : unmanaged, INumber<T> =>
        BackwardData((float[])(object)a.A, a.AOffset, (float[])(object)a.B, a.BOffset, (float[])(object)a.Out, p, p.Options.Threads);

    // dx [N, C, H, W] = backward-data of the 3×3 stride-2 pad-1 conv for dy [N, O, Ho, Wo] at dyo and w [O, C, 3, 3] at wo
    // (Ho = ⌈H/2⌉, Wo = ⌈W/2⌉); every element of dx is written.
    private static void BackwardData(float[] dy, int dyo, float[] w, int wo, float[] dx, ConvPlan p, int threads)
    {
        int plane = p.OutPlane, perImage = (plane + L - 1) / L, chunks = p.N * perImage;
        var shifts = new int[4][];
        var masks = new ushort[4][];
        for (int f = 0; f < 4; f++)
        {
            var offsets = PhaseOffsets[f];
            shifts[f] = new int[offsets.Length];
            masks[f] = new ushort[offsets.Length * perImage];
            for (int t = 0; t < offsets.Length; t++)
            {
                var (dr, dc) = offsets[t];
                shifts[f][t] = dr * p.Wo + dc;
                for (int q = 0; q < plane; q++)
                    if (q / p.Wo + dr < p.Ho && q % p.Wo + dc < p.Wo) masks[f][t * perImage + q / L] |= (ushort)(1 << (q % L));
            }
        }
        long phaseLength = (long)p.N * p.C * plane;
        var phases = ArrayPool<float>.Shared.Rent((int)(4 * phaseLength)); // phases: [4, N, C, Ho·Wo]
        float[]? side = null;
        try
        {
            // Planes that fill their chunks poorly (7²) lay the chunks end to end over dy's images, side by side.
            PackedChunks[]? packed = null;
            if (UsePacked(p))
            {
                side = ImagesSideBySide(p.Options, dy, dyo, p.N, p.O, plane); // side: [O, N, Ho·Wo], read as dy from here on
                dy = side; dyo = 0;
                packed = new PackedChunks[4];
                for (int f = 0; f < 4; f++) packed[f] = new PackedChunks(p.N, plane, PhaseTaps[f].Length, masks[f]);
                chunks = packed[0].Count;
            }
            // Items own MC dx channels × a range of tiles over all of K and all four phases, so each (dy channel, 8 dx
            // channels) block of w is transposed once for the four phases; at least two items per thread.
            int tiles = (chunks + 1) / 2, mBlocks = (p.C + MC - 1) / MC;
            int parts = Math.Clamp((2 * threads + mBlocks - 1) / mBlocks, 1, tiles);
            int cb = Math.Clamp(PhaseKcChannels, 1, p.O);
            var plan = p;
            WorkerTeam.For(p.Options, mBlocks * parts, threads, item =>
            {
                int ib = item / parts, part = item % parts;
                int t0 = (int)((long)tiles * part / parts), t1 = (int)((long)tiles * (part + 1) / parts);
                PhasesItem(dy, dyo, w, wo, phases, phaseLength, plan, shifts, masks, packed, ib * MC, Math.Min(MC, plan.C - ib * MC), t0, t1, cb, perImage, chunks);
            });
            StridedIter.ParallelChunks(p.Options, (long)p.N * p.C, p.InPlane, (lo, hi) => PhasePlanes.Merge(phases, phaseLength, dx, plan, (int)lo, (int)hi));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(phases);
            if (side is not null) ArrayPool<float>.Shared.Return(side);
        }
    }

    // dx channels [r0, r0 + mc) × tiles [t0, t1) of all four phases, over all dy channels in blocks of cb.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PhasesItem(float[] dy, int dyo, float[] w, int wo, float[] phases, long phaseLength, in ConvPlan p,
        int[][] shifts, ushort[][] masks, PackedChunks[]? packed, int r0, int mc, int t0, int t1, int cb, int perImage, int chunks)
    {
        int plane = p.OutPlane, mPadded = (mc + MR - 1) / MR * MR;
        var aBuf = _phaseA is { } buf && buf.Length >= 9 * mPadded * cb ? buf : _phaseA = GC.AllocateUninitializedArray<float>(9 * MC * cb, pinned: true);
        fixed (float* pdy = dy, pw = w, pph = phases, pa = aBuf)
        fixed (ushort* m0p = masks[0], m1p = masks[1], m2p = masks[2], m3p = masks[3])
        fixed (int* s0p = shifts[0], s1p = shifts[1], s2p = shifts[2], s3p = shifts[3])
        {
            ushort** pm = stackalloc ushort*[] { m0p, m1p, m2p, m3p };
            int** ps = stackalloc int*[] { s0p, s1p, s2p, s3p };
            int* aAt = stackalloc int[4];
            for (int c0 = 0; c0 < p.O; c0 += cb)
            {
                int cbb = Math.Min(cb, p.O - c0);
                // A of phase f at pa + aAt[f]: MR-row slivers of kc_f = cbb·taps_f rows (GemmDriver.PackA's layout).
                for (int f = 0, at = 0; f < 4; f++) { aAt[f] = at; at += mPadded * cbb * PhaseTaps[f].Length; }
                PackPhases(pw + wo, p.C, r0, mc, c0, cbb, pa, aAt);
                bool accumulate = c0 > 0;
                for (int f = 0; f < 4; f++)
                {
                    int kk = PhaseTaps[f].Length;
                    float* yPhase = pph + f * phaseLength;
                    nint dyChannel = packed is null ? plane : (nint)p.N * plane; // dy [N, O, plane], or side by side [O, N, plane]
                    float* xBlock = pdy + dyo + c0 * dyChannel, yItem = yPhase + (nint)r0 * plane;
                    if (packed is not null)
                        PackedTiles(packed[f], cbb, kk, pa + aAt[f], xBlock, dyChannel, ps[f], yItem, (nint)p.C * plane, plane, mc, t0, t1, accumulate);
                    else
                        AlignedTiles(cbb, kk, pa + aAt[f], xBlock, (nint)p.O * plane, plane, pm[f], perImage, ps[f], yItem, (nint)p.C * plane, plane,
                            chunks, mc, t0, t1, accumulate);
                }
            }
        }
    }

    // The four phases' A for dx channels [r0, r0 + mc) × dy channels [c0, c0 + cb): A_f[r, c·taps_f + t] = w[c0 + c, r0 + r,
    // PhaseTaps[f][t]]. Each (dy channel, 8-row sliver) block of w is 8 rows of 9 taps; it is transposed once into
    // 9 tap vectors of 8 rows (taps 1..8 by one 8×8 register transpose), which are then copied to the phases that use them.
    private static void PackPhases(float* w, int c, int r0, int mc, int c0, int cb, float* pa, int* aAt)
    {
        float* tmp = stackalloc float[9 * MR];
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            for (int cc = 0; cc < cb; cc++)
            {
                float* src = w + ((nint)(c0 + cc) * c + r0 + ir) * 9; // src[r·9 + tap] = w[c0 + cc, r0 + ir + r, tap]
                if (mr == MR && GemmTranspose.Supported)
                {
                    GemmTranspose.Transpose8x8(src + 1, 9, tmp + MR, MR);
                    for (int r = 0; r < MR; r++) tmp[r] = src[r * 9];
                }
                else
                    for (int tap = 0; tap < 9; tap++)
                        for (int r = 0; r < MR; r++) tmp[tap * MR + r] = r < mr ? src[r * 9 + tap] : 0f;
                for (int f = 0; f < 4; f++)
                {
                    var taps = PhaseTaps[f];
                    float* d = pa + aAt[f] + (nint)ir * cb * taps.Length + (nint)cc * taps.Length * MR;
                    for (int t = 0; t < taps.Length; t++) Vector256.Store(Vector256.Load(tmp + taps[t] * MR), d + t * MR);
                }
            }
        }
    }
}
