using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// Backward-data of the 3×3 stride-2 pad-1 conv as four stride-1 implicit GEMMs, one per phase of dx (even/odd rows ×
/// even/odd columns). dx[2a + py, 2b + px] only meets the kernel rows i ≡ py + 1 (mod 2) and columns j ≡ px + 1: for
/// py = 0 row i = 1 at dy row a; for py = 1 row i = 0 at dy row a + 1 and row i = 2 at dy row a (columns alike). So each
/// phase is a conv of dy (Ho×Wo planes) with 1, 2, 2 or 4 taps that read dy shifted by 0 or +1 row/column — the same
/// masked loads as the stride-1 path, with no col2im. The phases are written to a buffer and interleaved into dx.
/// </summary>
internal static unsafe partial class ConvImplicit
{
    /// <summary>Whether the stride-2 implicit backward-data is used where it applies (tests and the bench's A/B turn it off).</summary>
    internal static bool Stride2BackwardDataEnabled { get; set; } = true;

    /// <summary>True when <see cref="BackwardDataStride2"/> handles this float32 plan: 3×3, stride 2, padding 1, any H and W.</summary>
    public static bool AppliesStride2BackwardData(in ConvPlan p) =>
        Enabled && Stride2BackwardDataEnabled && Avx512F.IsSupported && p.G == 1 && p.Kh == 3 && p.Kw == 3
        && p.Geo is { StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, DilationH: 1, DilationW: 1 }
        && p.N > 0 && p.OutPlane > 0 && LaneUse(p.OutPlane) >= MinLaneUse;

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

    /// <summary>
    /// dx [N, C, H, W] = backward-data of the 3×3 stride-2 pad-1 conv for dy [N, O, Ho, Wo] at dyo and w [O, C, 3, 3] at wo
    /// (Ho = ⌈H/2⌉, Wo = ⌈W/2⌉); every element of dx is written. The caller checks <see cref="AppliesStride2BackwardData"/>.
    /// </summary>
    public static void BackwardDataStride2(float[] dy, int dyo, float[] w, int wo, float[] dx, ConvPlan p, int threads)
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
            if (UsePacked(plane, p.N))
            {
                side = ImagesSideBySide(dy, dyo, p.N, p.O, plane); // side: [O, N, Ho·Wo], read as dy from here on
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
            WorkerTeam.For(mBlocks * parts, threads, item =>
            {
                int ib = item / parts, part = item % parts;
                int t0 = (int)((long)tiles * part / parts), t1 = (int)((long)tiles * (part + 1) / parts);
                PhasesItem(dy, dyo, w, wo, phases, phaseLength, plan, shifts, masks, packed, ib * MC, Math.Min(MC, plan.C - ib * MC), t0, t1, cb, perImage, chunks);
            });
            StridedIter.ParallelChunks((long)p.N * p.C, p.InPlane, (lo, hi) => MergePhases(phases, phaseLength, dx, plan, (int)lo, (int)hi));
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

    private static readonly Vector512<int> InterleaveLow = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> InterleaveHigh = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    // Planes [lo, hi) of (image, channel): dx[n, c, 2a + py, 2b + px] = phases[2·py + px, n, c, a·Wo + b] where it lies inside
    // dx (odd H or W leave the last phase row or column out); each dx row interleaves two phase rows 16 columns at a time.
    // With evenOnly, phases holds only the even/even phase and the other three are zero (the 1×1 kernel).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MergePhases(float[] phases, long phaseLength, float[] dx, in ConvPlan p, int lo, int hi, bool evenOnly = false)
    {
        int wo = p.Wo, plane = p.OutPlane;
        fixed (float* pph = phases, pdx = dx)
            for (int item = lo; item < hi; item++)
            {
                float* dst = pdx + (nint)item * p.InPlane;
                for (int h = 0; h < p.H; h++)
                {
                    if (evenOnly && h % 2 == 1) { ClearRow(dst + (nint)h * p.W, p.W); continue; }
                    float* even = pph + (h % 2) * 2 * phaseLength + (nint)item * plane + (nint)(h / 2) * wo, odd = even + phaseLength;
                    float* row = dst + (nint)h * p.W;
                    for (int b = 0; b < wo; b += L)
                    {
                        int left = Math.Min(L, wo - b), cols = p.W - 2 * b; // phase columns this step; dx columns from 2b on
                        Vector512<float> e, o;
                        if (left == L) { e = Vector512.Load(even + b); o = evenOnly ? Vector512<float>.Zero : Vector512.Load(odd + b); }
                        else
                        {
                            var keep = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(left)).AsSingle();
                            e = Avx512F.MaskLoad(even + b, keep, Vector512<float>.Zero);
                            o = evenOnly ? Vector512<float>.Zero : Avx512F.MaskLoad(odd + b, keep, Vector512<float>.Zero);
                        }
                        var low = Avx512F.PermuteVar16x32x2(e, InterleaveLow, o);
                        var high = Avx512F.PermuteVar16x32x2(e, InterleaveHigh, o);
                        if (cols >= 2 * L) { low.Store(row + 2 * b); high.Store(row + 2 * b + L); }
                        else
                        {
                            Avx512F.MaskStore(row + 2 * b, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols)).AsSingle(), low);
                            Avx512F.MaskStore(row + 2 * b + L, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols - L)).AsSingle(), high);
                        }
                    }
                }
            }
    }

    // n floats at row set to zero with 16-lane stores (the last one masked): odd rows of the 1×1 kernel's dx are short.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClearRow(float* row, int n)
    {
        int j = 0;
        for (; j + L <= n; j += L) Vector512<float>.Zero.Store(row + j);
        if (j < n) Avx512F.MaskStore(row + j, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n - j)).AsSingle(), Vector512<float>.Zero);
    }
}
