using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// Implicit-GEMM forward conv for float32 stride-1 convs whose output rows are as wide as the input rows (Wo = W: every
/// 3×3/pad-1 conv of a ResNet, and stride-1 backward-data run as a forward). Row (c, tap) of the column matrix is the
/// input plane of channel c shifted by a constant (see <see cref="Im2ColSameVec"/>), so the micro-kernel reads its B
/// operand straight from x with masked loads — no column matrix is written or packed. Columns are cut into 16-lane
/// chunks that never straddle two images (each chunk has its own base), two chunks per 8×32 register tile.
/// K is blocked by whole channels (all taps of a channel in one block); within a block the kernel runs tap by tap so
/// that a tap's two masks stay in registers over the channel loop. Work items own MC output channels × a range of
/// tiles for the whole K loop and pack their own A: no barriers, and every output is summed by one item in the same
/// order whatever the thread count.
/// </summary>
internal static unsafe class ConvImplicit
{
    /// <summary>Whether the implicit path is used where it applies (tests and the bench's A/B turn it off; MTLMOE_IMPLICIT=0 too).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("MTLMOE_IMPLICIT") != "0";

    /// <summary>
    /// Smallest share of a plane's 16-lane chunk positions that are real outputs (28²: 1, 14²: 0.94, 7²: 0.77, 4²: 1);
    /// below it the padded lanes cost more than the unfold saves.
    /// </summary>
    internal static double MinLaneUse { get; set; } = 0.7;

    private const int L = 16, MR = 8, MC = 128;

    /// <summary>Depth of one K block in column rows (whole channels: kc = channels·kh·kw at most this, at least one channel).</summary>
    private const int KcTarget = 288;

    /// <summary>Share of chunk lanes that hold outputs for a plane of <paramref name="plane"/> positions.</summary>
    internal static double LaneUse(int plane) => plane / (double)((plane + L - 1) / L * L);

    /// <summary>True when <see cref="Forward"/> handles this float32 plan on this machine.</summary>
    public static bool Applies(in ConvPlan p) =>
        Enabled && Avx512F.IsSupported && p.G == 1 && p.Geo.StrideH == 1 && p.Geo.StrideW == 1 && p.Wo == p.W
        && p.Kh * p.Kw > 1 && p.OutPlane > 0 && LaneUse(p.OutPlane) >= MinLaneUse;

    [ThreadStatic] private static float[]? _aBuf;

    /// <summary>
    /// y [N, O, Ho, Wo] = conv(x [N, C, H, W] at xo, w [O, C, kh, kw] at wo); the caller checks <see cref="Applies"/>.
    /// With <paramref name="flipped"/>, w at wo is stored [C, O, kh, kw] and used with its taps reversed (w′[o, c, t] =
    /// w[c, o, kh·kw − 1 − t]): stride-1 backward-data as a forward, packed straight from the layer's kernel without a flipped copy.
    /// </summary>
    public static void Forward(float[] x, int xo, float[] w, int wo, float[] y, ConvPlan p, int threads, bool flipped = false)
    {
        int kk = p.Kh * p.Kw, plane = p.OutPlane, perImage = (plane + L - 1) / L, chunks = p.N * perImage;
        int tiles = (chunks + 1) / 2, mBlocks = (p.O + MC - 1) / MC;
        int cb = Math.Clamp(KcTarget / kk, 1, p.C);
        // At least two items per thread; ranges of tiles split an MC block only when there are too few blocks.
        int parts = Math.Clamp((2 * threads + mBlocks - 1) / mBlocks, 1, tiles);
        WorkerTeam.For(mBlocks * parts, threads, item =>
        {
            int ib = item / parts, part = item % parts;
            int t0 = (int)((long)tiles * part / parts), t1 = (int)((long)tiles * (part + 1) / parts);
            RunItem(x, xo, w, wo, flipped, y, p, ib * MC, Math.Min(MC, p.O - ib * MC), t0, t1, cb, kk, perImage, chunks);
        });
    }

    // Output channels [o0, o0 + mc) × tiles [t0, t1) over the whole K loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunItem(float[] x, int xo, float[] w, int wo, bool flipped, float[] y, in ConvPlan p, int o0, int mc, int t0, int t1,
        int cb, int kk, int perImage, int chunks)
    {
        int plane = p.OutPlane, inPlane = p.InPlane, kAll = p.K;
        // masks[tap·perImage + u]: lanes of chunk u whose input for that tap lies inside the plane (and is an output).
        var masks = Im2ColSameVec.Masks(p, 0, p.Ho, perImage);
        var aBuf = _aBuf is { } buf && buf.Length >= MC * cb * kk ? buf : _aBuf = GC.AllocateUninitializedArray<float>(MC * cb * kk, pinned: true);
        int* shifts = stackalloc int[kk];
        for (int t = 0; t < kk; t++) shifts[t] = Im2ColSameVec.Shift(p, t);
        ushort none = 0; // the masks of a missing second chunk: every tap reads this one zero (stride 0)
        fixed (float* px = x, pw = w, py = y, pa = aBuf)
        fixed (ushort* pm = masks)
        {
            for (int c0 = 0; c0 < p.C; c0 += cb)
            {
                int cbb = Math.Min(cb, p.C - c0), kc = cbb * kk;
                if (flipped) PackFlipped(pw + wo + ((nint)c0 * p.O + o0) * kk, p.O, kk, mc, cbb, pa);
                else PackA(pw + wo + (nint)o0 * kAll + c0 * kk, kAll, mc, kc, pa);
                bool accumulate = c0 > 0;
                for (int t = t0; t < t1; t++)
                {
                    // The tile's two chunks; an odd last chunk pairs with an empty one (all lanes off).
                    int g0 = 2 * t, g1 = 2 * t + 1;
                    int n0 = g0 / perImage, u0 = g0 % perImage;
                    float* x0 = px + xo + ((nint)n0 * p.C + c0) * inPlane + u0 * L;
                    float* y0 = py + ((nint)n0 * p.O + o0) * plane + u0 * L;
                    ushort* m0 = pm + u0, m1 = &none;
                    float* x1 = x0, y1 = y0;
                    ushort v0 = ValidLanes(plane, u0), v1 = 0;
                    nint mStride1 = 0;
                    if (g1 < chunks)
                    {
                        int n1 = g1 / perImage, u1 = g1 % perImage;
                        x1 = px + xo + ((nint)n1 * p.C + c0) * inPlane + u1 * L;
                        y1 = py + ((nint)n1 * p.O + o0) * plane + u1 * L;
                        m1 = pm + u1; v1 = ValidLanes(plane, u1); mStride1 = perImage;
                    }
                    for (int ir = 0; ir < mc; ir += MR)
                        Tile(cbb, kk, pa + (nint)ir * kc, x0, x1, inPlane, m0, perImage, m1, mStride1, shifts,
                            y0 + (nint)ir * plane, y1 + (nint)ir * plane, plane, Math.Min(MR, mc - ir), v0, v1, accumulate);
                }
            }
        }
    }

    // Lanes of chunk u that are outputs (positions below plane).
    private static ushort ValidLanes(int plane, int u) => (ushort)(plane - u * L >= L ? 0xFFFF : (1 << (plane - u * L)) - 1);

    // A rows [0, mc) × K columns [0, kc) (row stride lda) as MR-high slivers, kc×MR each (MR values per column), zero rows past mc.
    private static void PackA(float* a, int lda, int mc, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* d = dst + (nint)ir * kc;
            if (mr == MR && GemmTranspose.Supported) { GemmTranspose.Rows(a + (nint)ir * lda, lda, MR, kc, d, MR); continue; }
            for (int p = 0; p < kc; p++)
                for (int r = 0; r < MR; r++) d[p * MR + r] = r < mr ? a[(nint)(ir + r) * lda + p] : 0f;
        }
    }

    // PackA's layout for rows [0, mc) × channels [0, cb) of w′[o, c, t] = w[c, o, kk − 1 − t], w stored [C, rows, kk] from
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

    private static readonly Vector512<int> LaneBits = Vector512.Create(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Mask(ushort bits) => Vector512.Equals(Vector512.Create((int)bits) & LaneBits, LaneBits).AsSingle();

    /// <summary>
    /// One 8×32 tile over a K block of cb channels × kk taps: acc[r, lane] = Σ a[(c·kk + t)·MR + r] · x(chunk)[c·inPlane + shift_t + lane],
    /// stored (or added, when <paramref name="accumulate"/>) to the valid lanes of rows [0, mr) of each chunk's output (row stride outPlane).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Tile(int cb, int kk, float* a, float* x0, float* x1, nint inPlane, ushort* m0, nint mStride0, ushort* m1, nint mStride1,
        int* shifts, float* y0, float* y1, nint outPlane, int mr, ushort v0, ushort v1, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        nint aStep = (nint)kk * MR;
        for (int t = 0; t < kk; t++)
        {
            var k0 = Mask(m0[t * mStride0]); var k1 = Mask(m1[t * mStride1]);
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
        var q0 = Mask(v0); var q1 = Mask(v1);
        bool full0 = v0 == 0xFFFF, full1 = v1 == 0xFFFF;
        Store(y0, c00, q0, full0, accumulate); Store(y1, c01, q1, full1, accumulate); if (mr == 1) return; y0 += outPlane; y1 += outPlane;
        Store(y0, c10, q0, full0, accumulate); Store(y1, c11, q1, full1, accumulate); if (mr == 2) return; y0 += outPlane; y1 += outPlane;
        Store(y0, c20, q0, full0, accumulate); Store(y1, c21, q1, full1, accumulate); if (mr == 3) return; y0 += outPlane; y1 += outPlane;
        Store(y0, c30, q0, full0, accumulate); Store(y1, c31, q1, full1, accumulate); if (mr == 4) return; y0 += outPlane; y1 += outPlane;
        Store(y0, c40, q0, full0, accumulate); Store(y1, c41, q1, full1, accumulate); if (mr == 5) return; y0 += outPlane; y1 += outPlane;
        Store(y0, c50, q0, full0, accumulate); Store(y1, c51, q1, full1, accumulate); if (mr == 6) return; y0 += outPlane; y1 += outPlane;
        Store(y0, c60, q0, full0, accumulate); Store(y1, c61, q1, full1, accumulate); if (mr == 7) return; y0 += outPlane; y1 += outPlane;
        Store(y0, c70, q0, full0, accumulate); Store(y1, c71, q1, full1, accumulate);
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
