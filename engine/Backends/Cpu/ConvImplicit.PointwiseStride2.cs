using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// The 1×1 stride-2 conv without padding (ResNet's downsampling shortcut), forward and backward-data, as one GEMM whose
/// columns are all images' output positions side by side (j = n·Ho·Wo + q). Both phases multiply a matrix laid out
/// [N, K, Ho·Wo] — the forward x's even/even phase (split off x once), the backward-data dy itself — by w or wᵀ, and
/// write [N, M, Ho·Wo]: the forward's y, or dx's even/even phase, which is then interleaved with zeros into dx (the other
/// three phases of dx are zero). w is packed once per call and shared; each work item owns a range of 32-column
/// slivers, packs a sliver's B (all of K, from the image runs it spans) into L1 and runs every 8-row sliver of w over
/// it with the GEMM micro-kernel, writing each finished 8×32 tile straight to its images — no column matrix, no regroup,
/// and every output summed in the same order whatever the thread count. The forward takes it only where the phase-plane
/// forward (<see cref="AppliesStride2"/>) leaves a 1×1 conv: planes laid side by side (14² → 7²); elsewhere the two
/// showed no consistent difference (0.83–1.24× over five in-process A/B runs at 28² → 14² and 7² → 4²).
/// </summary>
internal static unsafe partial class ConvImplicit
{
    /// <summary>Whether the 1×1 stride-2 convs take this path where it applies (tests and the bench's A/B turn it off).</summary>
    internal static bool PointwiseStride2Enabled { get; set; } = true;

    private const int PwNR = 32, PwKC = 256;

    /// <summary>True when the 1×1 stride-2 forward and backward-data here handle this float32 plan: 1×1, stride 2, no padding, any H and W.</summary>
    public static bool AppliesPointwiseStride2(in ConvPlan p) =>
        Enabled && PointwiseStride2Enabled && Avx512F.IsSupported && p.G == 1 && p.Kh == 1 && p.Kw == 1
        && p.Geo is { StrideH: 2, StrideW: 2, PadH: 0, PadW: 0, DilationH: 1, DilationW: 1 }
        && p.N > 0 && p.OutPlane > 0 && p.C > 0 && p.O > 0;

    /// <summary>y [N, O, Ho, Wo] = w [O, C] · x [N, C, H, W] at (2·oh, 2·ow); the caller checks <see cref="AppliesPointwiseStride2"/>.</summary>
    public static void ForwardPointwiseStride2(float[] x, int xo, float[] w, int wo, float[] y, ConvPlan p, int threads)
    {
        int plane = p.OutPlane;
        var even = ArrayPool<float>.Shared.Rent(p.N * p.C * plane); // even: [N, C, Ho·Wo] = x[:, :, 0::2, 0::2]
        try
        {
            var plan = p;
            StridedIter.ParallelChunks((long)p.N * p.C, plane,
                (lo, hi) => SplitPhases(x, xo, even, (nint)plan.C * plane, plane, 0, false, false, plan, (int)lo, (int)hi));
            PointwiseGemm(w, wo, transA: false, p.O, p.C, even, 0, y, p.N, plane, threads);
        }
        finally { ArrayPool<float>.Shared.Return(even); }
    }

    /// <summary>
    /// dx [N, C, H, W] = backward-data of the 1×1 stride-2 conv for dy [N, O, Ho, Wo] at dyo and w [O, C, 1, 1] at wo
    /// (Ho = ⌈H/2⌉, Wo = ⌈W/2⌉); every element of dx is written. The caller checks <see cref="AppliesPointwiseStride2"/>.
    /// </summary>
    public static void BackwardDataPointwiseStride2(float[] dy, int dyo, float[] w, int wo, float[] dx, ConvPlan p, int threads)
    {
        int plane = p.OutPlane;
        long phaseLength = (long)p.N * p.C * plane;
        var phase = ArrayPool<float>.Shared.Rent((int)phaseLength); // phase: [N, C, Ho·Wo] = dx[:, :, 0::2, 0::2] = wᵀ · dy
        try
        {
            PointwiseGemm(w, wo, transA: true, p.C, p.O, dy, dyo, phase, p.N, plane, threads);
            var plan = p;
            StridedIter.ParallelChunks((long)p.N * p.C, p.InPlane, (lo, hi) => MergePhases(phase, phaseLength, dx, plan, (int)lo, (int)hi, evenOnly: true));
        }
        finally { ArrayPool<float>.Shared.Return(phase); }
    }

    /// <summary>
    /// dst [images, m, plane] = op(A) · src [images, k, plane] (src at srcOff), per image; op(A) is w [m, k] at wo, or with
    /// <paramref name="transA"/> the transpose of w stored [k, m]. Columns of all images side by side form the GEMM's N.
    /// </summary>
    private static void PointwiseGemm(float[] w, int wo, bool transA, int m, int k, float[] src, int srcOff, float[] dst, int images, int plane, int threads)
    {
        int mPad = (m + MR - 1) / MR * MR, cols = images * plane, slivers = (cols + PwNR - 1) / PwNR;
        int lda = transA ? m : k;
        var aPacked = ArrayPool<float>.Shared.Rent(mPad * k); // K blocks of PwKC: block pc at pc·mPad, row sliver ir at + ir·kc
        try
        {
            // A packed once over the threads: items of (K block, 64 rows).
            int kBlocks = (k + PwKC - 1) / PwKC, rowItems = (m + 63) / 64;
            WorkerTeam.For(kBlocks * rowItems, threads, item =>
            {
                int pc = item / rowItems * PwKC, kc = Math.Min(PwKC, k - pc), ic = item % rowItems * 64, mc = Math.Min(64, m - ic);
                fixed (float* pw = w, pa = aPacked)
                    GemmDriver<float, Avx512Kernel<float>>.PackA(transA, pw + wo, lda, ic, mc, pc, kc, MR, pa + (nint)pc * mPad + (nint)ic * kc);
            });
            // Sliver ranges: at least four per thread (slivers differ in how many image runs they copy).
            int parts = Math.Clamp(4 * threads, 1, slivers);
            WorkerTeam.For(parts, threads, part =>
            {
                int s0 = (int)((long)slivers * part / parts), s1 = (int)((long)slivers * (part + 1) / parts);
                PointwiseSlivers(aPacked, mPad, m, k, src, srcOff, dst, plane, cols, s0, s1);
            });
        }
        finally { ArrayPool<float>.Shared.Return(aPacked); }
    }

    [ThreadStatic] private static float[]? _pwB;

    // Slivers [s0, s1): pack the sliver's B (k × 32, zero past the last column), then every 8-row sliver of A over it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PointwiseSlivers(float[] aPacked, int mPad, int m, int k, float[] src, int srcOff, float[] dst, int plane, int cols, int s0, int s1)
    {
        var bBuf = _pwB is { } buf && buf.Length >= k * PwNR ? buf : _pwB = GC.AllocateUninitializedArray<float>(Math.Max(k, PwKC) * PwNR, pinned: true);
        float* tile = stackalloc float[MR * PwNR];
        fixed (float* pa = aPacked, ps = src, pd = dst, pb = bBuf)
            for (int s = s0; s < s1; s++)
            {
                int j0 = s * PwNR, nv = Math.Min(PwNR, cols - j0);
                PackSliver(ps + srcOff, k, plane, j0, nv, pb);
                for (int ir = 0; ir < m; ir += MR)
                {
                    for (int pc = 0; pc < k; pc += PwKC)
                    {
                        int kc = Math.Min(PwKC, k - pc);
                        Avx512Kernel<float>.Run(kc, pa + (nint)pc * mPad + (nint)ir * kc, pb + (nint)pc * PwNR, PwNR, tile, PwNR, 1f, 1f, betaZero: pc == 0);
                    }
                    StoreTile(tile, Math.Min(MR, m - ir), pd + (nint)ir * plane, m, plane, j0, nv);
                }
            }
    }

    // b[kk·32 + t] = src[n, kk, q] for column j0 + t = n·plane + q, t < nv: each image run of the sliver copied row by row
    // with (masked) 16-lane moves. Lanes from nv on keep what the buffer held: they only reach tile columns never stored.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackSliver(float* src, int k, int plane, int j0, int nv, float* b)
    {
        for (int t = 0; t < nv;)
        {
            int j = j0 + t, n = j / plane, q = j % plane, len = Math.Min(plane - q, nv - t);
            float* from = src + ((nint)n * k * plane + q), to = b + t;
            if (len == PwNR)
                for (int kk = 0; kk < k; kk++, from += plane, to += PwNR)
                {
                    Vector512.Load(from).Store(to);
                    Vector512.Load(from + L).Store(to + L);
                }
            else
                for (int kk = 0; kk < k; kk++, from += plane, to += PwNR) CopyMasked(from, to, len);
            t += len;
        }
    }

    // Copies len (1..32) floats with 16-lane moves, masked past len (nothing outside the run is read or written).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyMasked(float* from, float* to, int len)
    {
        var lanes = Vector512<int>.Indices;
        if (len >= L)
        {
            Vector512.Load(from).Store(to);
            if (len == L) return;
            var rest = Vector512.LessThan(lanes, Vector512.Create(len - L)).AsSingle();
            Avx512F.MaskStore(to + L, rest, Avx512F.MaskLoad(from + L, rest, Vector512<float>.Zero));
            return;
        }
        var keep = Vector512.LessThan(lanes, Vector512.Create(len)).AsSingle();
        Avx512F.MaskStore(to, keep, Avx512F.MaskLoad(from, keep, Vector512<float>.Zero));
    }

    // Rows [0, mr) of the 8×32 tile (columns j0 .. j0 + nv) to dst [images, m, plane] from row ir (dst is at row ir of image 0).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StoreTile(float* tile, int mr, float* dst, int m, int plane, int j0, int nv)
    {
        for (int t = 0; t < nv;)
        {
            int j = j0 + t, n = j / plane, q = j % plane, len = Math.Min(plane - q, nv - t);
            float* to = dst + ((nint)n * m * plane + q), from = tile + t;
            if (len == PwNR)
                for (int r = 0; r < mr; r++, to += plane, from += PwNR)
                {
                    Vector512.Load(from).Store(to);
                    Vector512.Load(from + L).Store(to + L);
                }
            else
                for (int r = 0; r < mr; r++, to += plane, from += PwNR) CopyMasked(from, to, len);
            t += len;
        }
    }
}
