using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu.Conv.Shared;

/// <summary>
/// The register-tiled GEMM every implicit-GEMM conv runs (ImplicitGemm, ImplicitGemmStride2,
/// ImplicitGemmStride2BackwardData): its B operand is read straight from input planes with one masked load per 16 output
/// positions and kernel tap, because row (c, tap) of the column matrix is channel c's plane shifted by a constant
/// (<see cref="Source"/>). Columns are cut into 16-lane chunks, two per 8×32 register tile: each image's own chunks
/// (each with its own base), or, for planes that fill their chunks poorly, chunks laid end to end over the images
/// (PackedChunks.cs). K is blocked by whole channels (all taps of a channel in one block); within a block the kernel
/// runs tap by tap so that a tap's two masks stay in registers over the channel loop. Work items own MC output channels
/// × a range of tiles for the whole K loop and pack their own A: no barriers, and every output is summed by one item in
/// the same order whatever the thread count.
/// </summary>
internal static unsafe partial class ImplicitGemmKernel
{
    internal const int L = 16, MR = 8, MC = 128;

    /// <summary>
    /// Depth of one K block in column rows (whole channels: kc = channels·kh·kw at most this, at least one channel). 576
    /// (64 channels of a 3×3) against 288, ResNet's 3×3 convs at batch 16, three interleaved runs each: stride-1 forward
    /// 1.09–1.11× and backward-data 1.05–1.06× at 28² (one K block instead of two), 0.95–1.14× (mostly 1.0–1.06×) at
    /// 14²/7²/4², stride-2 forward 0.98–1.04×; 1152 and 2304 were no better at 14² and slower at 7²/4².
    /// </summary>
    private const int KcTarget = 576;

    /// <summary>Share of chunk lanes that hold outputs for a plane of <paramref name="plane"/> positions.</summary>
    internal static double LaneUse(int plane) => plane / (double)((plane + L - 1) / L * L);

    [ThreadStatic] private static float[]? _aBuf;

    /// <summary>
    /// Where the B operand comes from: input planes at X + Offset, image i at i·ImageStride, channel c at c·ChannelStride,
    /// and for kernel tap t the value of output position q at q + Shifts[t]; Masks[t·chunks + u] are the lanes of chunk u
    /// that read inside their plane (and are outputs).
    /// </summary>
    internal sealed record Source(float[] X, int Offset, int ImageStride, int ChannelStride, int[] Shifts, ushort[] Masks);

    // The GEMM over a source: items own MC output channels × a range of tiles.
    internal static void Run(Source source, float[] w, int wo, bool flipped, float[] y, in ConvPlan p, int threads)
    {
        int kk = p.Kh * p.Kw, plane = p.OutPlane, perImage = (plane + L - 1) / L, chunks = p.N * perImage;
        int tiles = (chunks + 1) / 2, mBlocks = (p.O + MC - 1) / MC;
        int cb = Math.Clamp(KcTarget / kk, 1, p.C);
        // At least two items per thread; ranges of tiles split an MC block only when there are too few blocks.
        int parts = Math.Clamp((2 * threads + mBlocks - 1) / mBlocks, 1, tiles);
        // Chunks laid end to end when the source has each channel's images side by side (callers copy it so for such planes).
        var packed = UsePacked(p) && source.ImageStride == plane ? new PackedChunks(p.N, plane, kk, source.Masks) : null;
        if (packed is not null) { chunks = packed.Count; tiles = (chunks + 1) / 2; parts = Math.Clamp((2 * threads + mBlocks - 1) / mBlocks, 1, tiles); }
        var plan = p;
        WorkerTeam.For(p.Options, mBlocks * parts, threads, item =>
        {
            int ib = item / parts, part = item % parts;
            int t0 = (int)((long)tiles * part / parts), t1 = (int)((long)tiles * (part + 1) / parts);
            RunItem(source, packed, w, wo, flipped, y, plan, ib * MC, Math.Min(MC, plan.O - ib * MC), t0, t1, cb, kk, perImage, chunks);
        });
    }

    // Output channels [o0, o0 + mc) × tiles [t0, t1) over the whole K loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunItem(Source source, PackedChunks? packed, float[] w, int wo, bool flipped, float[] y, in ConvPlan p, int o0, int mc, int t0, int t1,
        int cb, int kk, int perImage, int chunks)
    {
        int plane = p.OutPlane, kAll = p.K;
        nint xImage = source.ImageStride, xChannel = source.ChannelStride;
        var aBuf = _aBuf is { } buf && buf.Length >= MC * cb * kk ? buf : _aBuf = GC.AllocateUninitializedArray<float>(MC * cb * kk, pinned: true);
        fixed (float* px = source.X, pw = w, py = y, pa = aBuf)
        fixed (ushort* pm = source.Masks)
        fixed (int* shifts = source.Shifts)
        {
            float* xs = px + source.Offset;
            for (int c0 = 0; c0 < p.C; c0 += cb)
            {
                int cbb = Math.Min(cb, p.C - c0), kc = cbb * kk;
                if (flipped) PackFlipped(pw + wo + ((nint)c0 * p.O + o0) * kk, p.O, kk, mc, cbb, pa);
                else GemmDriver<float, Avx512Kernel<float>>.PackA(false, pw + wo + (nint)o0 * kAll, kAll, 0, mc, c0 * kk, kc, MR, pa);
                bool accumulate = c0 > 0;
                float* xBlock = xs + (nint)c0 * xChannel, yItem = py + (nint)o0 * plane;
                if (packed is not null) PackedTiles(packed, cbb, kk, pa, xBlock, xChannel, shifts, yItem, (nint)p.O * plane, plane, mc, t0, t1, accumulate);
                else AlignedTiles(cbb, kk, pa, xBlock, xImage, xChannel, pm, perImage, shifts, yItem, (nint)p.O * plane, plane, chunks, mc, t0, t1, accumulate);
            }
        }
    }

    // Tiles [t0, t1) over each image's own chunks (perImage per image, chunks in all) for one K block: B from xs (the
    // block's first channel; images xImage apart, channels xChannel), tap masks [t·perImage + u], outputs from ys (the
    // item's first row; images yImage apart, rows plane apart).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AlignedTiles(int cb, int kk, float* a, float* xs, nint xImage, nint xChannel, ushort* masks, int perImage, int* shifts,
        float* ys, nint yImage, int plane, int chunks, int mc, int t0, int t1, bool accumulate)
    {
        int kc = cb * kk;
        ushort none = 0; // the masks of a missing second chunk: every tap reads this one zero (stride 0)
        for (int t = t0; t < t1; t++)
        {
            // The tile's two chunks; an odd last chunk pairs with an empty one (all lanes off).
            int g0 = 2 * t, g1 = 2 * t + 1;
            int n0 = g0 / perImage, u0 = g0 % perImage;
            float* x0 = xs + n0 * xImage + u0 * L, y0 = ys + n0 * yImage + u0 * L;
            ushort* m0 = masks + u0, m1 = &none;
            float* x1 = x0, y1 = y0;
            ushort v0 = ValidLanes(plane, u0), v1 = 0;
            nint mStride1 = 0;
            if (g1 < chunks)
            {
                int n1 = g1 / perImage, u1 = g1 % perImage;
                x1 = xs + n1 * xImage + u1 * L; y1 = ys + n1 * yImage + u1 * L;
                m1 = masks + u1; v1 = ValidLanes(plane, u1); mStride1 = perImage;
            }
            for (int ir = 0; ir < mc; ir += MR)
            {
                nint row = (nint)ir * plane;
                Tile(cb, kk, a + (nint)ir * kc, x0, x1, xChannel, m0, perImage, m1, mStride1, shifts,
                    y0 + row, y0 + row, y1 + row, y1 + row, plane, Math.Min(MR, mc - ir), v0, 0, v1, 0, accumulate);
            }
        }
    }

    // Lanes of chunk u that are outputs (positions below plane).
    private static ushort ValidLanes(int plane, int u) => (ushort)(plane - u * L >= L ? 0xFFFF : (1 << (plane - u * L)) - 1);

    // GemmDriver.PackA's layout (MR-high slivers, kc×MR each) for rows [0, mc) × channels [0, cb) of
    // w′[o, c, t] = w[c, o, kk − 1 − t], w stored [C, rows, kk] from
    // (c0, o0): each (channel, 8-row sliver) block is kk·8 contiguous values on both sides, transposed with its taps reversed
    // (8×8 register transposes written bottom-up; the first kk % 8 taps of the kernel one by one).
    private static void PackFlipped(float* w, int rows, int kk, int mc, int cb, float* dst)
    {
        int kc = cb * kk, head = GemmTranspose.Supported ? kk % MR : kk;
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            for (int c = 0; c < cb; c++)
            {
                // src[r·kk + s] = w[c, ir + r, s]; d[t·MR + r] = w′[ir + r, c, t] = src[r·kk + kk − 1 − t]
                float* src = w + ((nint)c * rows + ir) * kk, d = dst + (nint)ir * kc + (nint)c * kk * MR;
                if (mr == MR)
                    for (int s0 = head; s0 < kk; s0 += MR)
                        GemmTranspose.Transpose8x8(src + s0, kk, d + (nint)(kk - 1 - s0) * MR, -MR);
                for (int s = 0; s < (mr == MR ? head : kk); s++)
                {
                    float* dt = d + (nint)(kk - 1 - s) * MR;
                    int r = 0;
                    for (; r < mr; r++) dt[r] = src[r * kk + s];
                    for (; r < MR; r++) dt[r] = 0f;
                }
            }
        }
    }

    /// <summary>
    /// One 8×32 tile over a K block of cb channels × kk taps: acc[r, lane] = Σ a[(c·kk + t)·MR + r] · x(chunk)[c·inPlane + shift_t + lane],
    /// stored (or added, when <paramref name="accumulate"/>) to rows [0, mr) of each chunk's output (row stride outPlane):
    /// lanes va at ya and, for a chunk that spans two images (chunks laid end to end), lanes vb at yb (lane l at yb + l).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Tile(int cb, int kk, float* a, float* x0, float* x1, nint inPlane, ushort* m0, nint mStride0, ushort* m1, nint mStride1,
        int* shifts, float* ya0, float* yb0, float* ya1, float* yb1, nint outPlane, int mr, ushort va0, ushort vb0, ushort va1, ushort vb1, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        nint aStep = (nint)kk * MR;
        for (int t = 0; t < kk; t++)
        {
            var k0 = Im2ColSameVec.Mask(m0[t * mStride0]); var k1 = Im2ColSameVec.Mask(m1[t * mStride1]);
            float* s0 = x0 + shifts[t], s1 = x1 + shifts[t], at = a + t * MR;
            for (int c = 0; c < cb; c++)
            {
                var b0 = Avx512F.MaskLoad(s0, k0, Vector512<float>.Zero);
                var b1 = Avx512F.MaskLoad(s1, k1, Vector512<float>.Zero);
                Vector512<float> v;
                v = Vector512.Create(at[0]); c00 = Avx512F.FusedMultiplyAdd(v, b0, c00); c01 = Avx512F.FusedMultiplyAdd(v, b1, c01);
                v = Vector512.Create(at[1]); c10 = Avx512F.FusedMultiplyAdd(v, b0, c10); c11 = Avx512F.FusedMultiplyAdd(v, b1, c11);
                v = Vector512.Create(at[2]); c20 = Avx512F.FusedMultiplyAdd(v, b0, c20); c21 = Avx512F.FusedMultiplyAdd(v, b1, c21);
                v = Vector512.Create(at[3]); c30 = Avx512F.FusedMultiplyAdd(v, b0, c30); c31 = Avx512F.FusedMultiplyAdd(v, b1, c31);
                v = Vector512.Create(at[4]); c40 = Avx512F.FusedMultiplyAdd(v, b0, c40); c41 = Avx512F.FusedMultiplyAdd(v, b1, c41);
                v = Vector512.Create(at[5]); c50 = Avx512F.FusedMultiplyAdd(v, b0, c50); c51 = Avx512F.FusedMultiplyAdd(v, b1, c51);
                v = Vector512.Create(at[6]); c60 = Avx512F.FusedMultiplyAdd(v, b0, c60); c61 = Avx512F.FusedMultiplyAdd(v, b1, c61);
                v = Vector512.Create(at[7]); c70 = Avx512F.FusedMultiplyAdd(v, b0, c70); c71 = Avx512F.FusedMultiplyAdd(v, b1, c71);
                at += aStep; s0 += inPlane; s1 += inPlane;
            }
        }
        var qa0 = Im2ColSameVec.Mask(va0); var qb0 = Im2ColSameVec.Mask(vb0);
        var qa1 = Im2ColSameVec.Mask(va1); var qb1 = Im2ColSameVec.Mask(vb1);
        bool fa0 = va0 == 0xFFFF, fa1 = va1 == 0xFFFF, b0On = vb0 != 0, b1On = vb1 != 0;
        // Row by row, unrolled (the accumulators stay in registers).
        StorePair(ya0, yb0, c00, qa0, fa0, qb0, b0On, accumulate); StorePair(ya1, yb1, c01, qa1, fa1, qb1, b1On, accumulate); if (mr == 1) return;
        ya0 += outPlane; yb0 += outPlane; ya1 += outPlane; yb1 += outPlane;
        StorePair(ya0, yb0, c10, qa0, fa0, qb0, b0On, accumulate); StorePair(ya1, yb1, c11, qa1, fa1, qb1, b1On, accumulate); if (mr == 2) return;
        ya0 += outPlane; yb0 += outPlane; ya1 += outPlane; yb1 += outPlane;
        StorePair(ya0, yb0, c20, qa0, fa0, qb0, b0On, accumulate); StorePair(ya1, yb1, c21, qa1, fa1, qb1, b1On, accumulate); if (mr == 3) return;
        ya0 += outPlane; yb0 += outPlane; ya1 += outPlane; yb1 += outPlane;
        StorePair(ya0, yb0, c30, qa0, fa0, qb0, b0On, accumulate); StorePair(ya1, yb1, c31, qa1, fa1, qb1, b1On, accumulate); if (mr == 4) return;
        ya0 += outPlane; yb0 += outPlane; ya1 += outPlane; yb1 += outPlane;
        StorePair(ya0, yb0, c40, qa0, fa0, qb0, b0On, accumulate); StorePair(ya1, yb1, c41, qa1, fa1, qb1, b1On, accumulate); if (mr == 5) return;
        ya0 += outPlane; yb0 += outPlane; ya1 += outPlane; yb1 += outPlane;
        StorePair(ya0, yb0, c50, qa0, fa0, qb0, b0On, accumulate); StorePair(ya1, yb1, c51, qa1, fa1, qb1, b1On, accumulate); if (mr == 6) return;
        ya0 += outPlane; yb0 += outPlane; ya1 += outPlane; yb1 += outPlane;
        StorePair(ya0, yb0, c60, qa0, fa0, qb0, b0On, accumulate); StorePair(ya1, yb1, c61, qa1, fa1, qb1, b1On, accumulate); if (mr == 7) return;
        ya0 += outPlane; yb0 += outPlane; ya1 += outPlane; yb1 += outPlane;
        StorePair(ya0, yb0, c70, qa0, fa0, qb0, b0On, accumulate); StorePair(ya1, yb1, c71, qa1, fa1, qb1, b1On, accumulate);
    }

    // One output row of a chunk: part A's valid lanes at ya, part B's (when any) at yb.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePair(float* ya, float* yb, Vector512<float> acc, Vector512<float> qa, bool fullA, Vector512<float> qb, bool bOn, bool accumulate)
    {
        Store(ya, acc, qa, fullA, accumulate);
        if (bOn) Store(yb, acc, qb, false, accumulate);
    }

    // The valid lanes of one chunk row: a plain store when all 16 are outputs, else masked (lanes off are never touched).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* y, Vector512<float> acc, Vector512<float> valid, bool full, bool accumulate)
    {
        if (full)
        {
            if (accumulate) acc += Vector512.Load(y);
            acc.Store(y);
        }
        else
        {
            if (accumulate) acc += Avx512F.MaskLoad(y, valid, Vector512<float>.Zero);
            Avx512F.MaskStore(y, valid, acc);
        }
    }
}
