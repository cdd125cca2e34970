using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using static MtlMoe.Engine.Backends.Cpu.Conv.Shared.ImplicitGemmKernel;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu.Conv;

// 1×1 stride-2 convs as one GEMM over all images' output positions ("pointwise-stride2-gemm"). Not an implicit GEMM:
// an explicit one whose columns are the output positions of every image side by side (j = n·Ho·Wo + q).
//
// The idea: the 1×1 stride-2 conv without padding (ResNet's downsampling shortcut) reads only x's even/even phase.
// Forward and backward-data multiply a matrix laid out [N, K, Ho·Wo] — the forward x's even/even phase (split off x once,
// Shared/PhasePlanes.cs), the backward-data dy itself — by w or wᵀ and write [N, M, Ho·Wo]: the forward's y, or dx's
// even/even phase, then interleaved with zeros into dx (every dx element written once, no cleared dx, no scatter). w is
// packed once per call and shared; each work item owns a range of 32-column slivers, packs a sliver's B (all of K, from
// the image runs it spans) into L1 and runs every 8-row sliver of w over it with the GEMM micro-kernel, writing each
// 8×32 tile straight to its images: no column matrix, no regroup. Backward-weights is the GEMM with K over all images'
// positions: x's even phase packed once into 32-channel slivers, dy's rows packed per chunk of whole images, dw tiles
// summed in place. Every output is summed in the same order whatever the thread count.
//
// Where it wins (in-process A/B, float32, batch 16): backward-data against the per-image GEMM + scatter 1.2–1.9× at
// 28²/14²/7² inputs (against the previous build 1.16× at 28², 1.47× at 14², 1.35× at 7²). Where the planes lie side by
// side (14² → 7²), the forward 1.01–1.33× against the phase-plane forward and backward-weights 1.15–1.28× (five runs)
// against the batched unfold; at 28² and 7² inputs the forward measured 0.83–1.24× and backward-weights 0.63–0.67× and
// 0.89–0.94× against the tiled and batched paths, which keep those shapes. The ResNet-18 step: 0.996–1.022× (the 1×1
// convs are about 1 % of it).
//
// Applies: float32, AVX-512, groups 1, 1×1, stride 2, no padding, dilation 1, any H and W. The table asks it after the
// phase-plane forward and the stride-2 backward-data, so the forward only gets the 1×1 convs those leave (planes side by
// side); backward-data at every plane size; backward-weights only where the planes take the packed chunks (or
// everywhere with PointwiseStride2WeightsEverywhere).
//
// Tested against: the float64 direct convolution, slivers spanning many images or ending part-way, every dx element
// written over stale pooled buffers (tests/MtlMoe.Engine.Tests/CpuPerf/ConvPointwiseStride2Tests.cs).
internal sealed unsafe class PointwiseStride2Gemm : IConvAlgorithm
{
    public static readonly PointwiseStride2Gemm Instance = new();

    public string Name => "pointwise-stride2-gemm";

    public bool Applies(in ConvPlan p, ConvPass pass) =>
        p.DType == DType.Float32 && p.On(CpuPath.PointwiseStride2Gemm) && Avx512F.IsSupported && p.G == 1 && p.Kh == 1 && p.Kw == 1
        && p.Geo is { StrideH: 2, StrideW: 2, PadH: 0, PadW: 0, DilationH: 1, DilationW: 1 }
        && p.N > 0 && p.OutPlane > 0 && p.C > 0 && p.O > 0
        && (pass != ConvPass.BackwardWeights || p.Options.PointwiseStride2WeightsEverywhere || UsePacked(p));

    public bool NeedsClearedOutput(ConvPass pass) => pass == ConvPass.BackwardWeights; // as the other backward-weights (overwritten anyway)

    public void Run<T>(in ConvPlan p, ConvPass pass, in ConvArgs<T> a) where T : unmanaged, INumber<T>
    {
        float[] A = (float[])(object)a.A, B = (float[])(object)a.B, Out = (float[])(object)a.Out;
        int threads = p.Options.Threads;
        switch (pass)
        {
            case ConvPass.Forward: Forward(A, a.AOffset, B, a.BOffset, Out, p, threads); break;
            case ConvPass.BackwardData: BackwardData(A, a.AOffset, B, a.BOffset, Out, p, threads); break;
            default: BackwardWeights(A, a.AOffset, B, a.BOffset, Out, p, threads); break;
        }
    }

    private const int PwNR = 32, PwKC = 256;

    /// <summary>y [N, O, Ho, Wo] = w [O, C] · x [N, C, H, W] at (2·oh, 2·ow); the caller checks Applies.</summary>
    private static void Forward(float[] x, int xo, float[] w, int wo, float[] y, ConvPlan p, int threads)
    {
        int plane = p.OutPlane;
        var even = ArrayPool<float>.Shared.Rent(p.N * p.C * plane); // even: [N, C, Ho·Wo] = x[:, :, 0::2, 0::2]
        try
        {
            var plan = p;
            StridedIter.ParallelChunks(p.Options, (long)p.N * p.C, plane,
                (lo, hi) => PhasePlanes.Split(x, xo, even, (nint)plan.C * plane, plane, 0, false, false, plan, (int)lo, (int)hi));
            PointwiseGemm(p.Options, w, wo, transA: false, p.O, p.C, even, 0, y, p.N, plane, threads);
        }
        finally { ArrayPool<float>.Shared.Return(even); }
    }

    /// <summary>
    /// dx [N, C, H, W] = backward-data of the 1×1 stride-2 conv for dy [N, O, Ho, Wo] at dyo and w [O, C, 1, 1] at wo
    /// (Ho = ⌈H/2⌉, Wo = ⌈W/2⌉); every element of dx is written.
    /// </summary>
    private static void BackwardData(float[] dy, int dyo, float[] w, int wo, float[] dx, ConvPlan p, int threads)
    {
        int plane = p.OutPlane;
        long phaseLength = (long)p.N * p.C * plane;
        var phase = ArrayPool<float>.Shared.Rent((int)phaseLength); // phase: [N, C, Ho·Wo] = dx[:, :, 0::2, 0::2] = wᵀ · dy
        try
        {
            PointwiseGemm(p.Options, w, wo, transA: true, p.C, p.O, dy, dyo, phase, p.N, plane, threads);
            var plan = p;
            StridedIter.ParallelChunks(p.Options, (long)p.N * p.C, p.InPlane, (lo, hi) => PhasePlanes.Merge(phase, phaseLength, dx, plan, (int)lo, (int)hi, evenOnly: true));
        }
        finally { ArrayPool<float>.Shared.Return(phase); }
    }

    /// <summary>
    /// dst [images, m, plane] = op(A) · src [images, k, plane] (src at srcOff), per image; op(A) is w [m, k] at wo, or with
    /// <paramref name="transA"/> the transpose of w stored [k, m]. Columns of all images side by side form the GEMM's N.
    /// </summary>
    private static void PointwiseGemm(CpuBackendOptions o, float[] w, int wo, bool transA, int m, int k, float[] src, int srcOff, float[] dst, int images, int plane, int threads)
    {
        int mPad = (m + MR - 1) / MR * MR, cols = images * plane, slivers = (cols + PwNR - 1) / PwNR;
        int lda = transA ? m : k;
        var aPacked = ArrayPool<float>.Shared.Rent(mPad * k); // K blocks of PwKC: block pc at pc·mPad, row sliver ir at + ir·kc
        try
        {
            // A packed once over the threads: items of (K block, 64 rows).
            int kBlocks = (k + PwKC - 1) / PwKC, rowItems = (m + 63) / 64;
            WorkerTeam.For(o, kBlocks * rowItems, threads, item =>
            {
                int pc = item / rowItems * PwKC, kc = Math.Min(PwKC, k - pc), ic = item % rowItems * 64, mc = Math.Min(64, m - ic);
                fixed (float* pw = w, pa = aPacked)
                    GemmDriver<float, Avx512Kernel<float>>.PackA(transA, pw + wo, lda, ic, mc, pc, kc, MR, pa + (nint)pc * mPad + (nint)ic * kc);
            });
            // Sliver ranges: at least four per thread (slivers differ in how many image runs they copy).
            int parts = Math.Clamp(4 * threads, 1, slivers);
            WorkerTeam.For(o, parts, threads, part =>
            {
                int s0 = (int)((long)slivers * part / parts), s1 = (int)((long)slivers * (part + 1) / parts);
                PointwiseSlivers(aPacked, mPad, m, k, src, srcOff, dst, plane, cols, s0, s1);
            });
        }
        finally { ArrayPool<float>.Shared.Return(aPacked); }
    }

    [ThreadStatic] private static float[]? _pwB;

    // Slivers [s0, s1): pack the sliver's B (k × 32; lanes past the last column are stale and never stored), then every
    // 8-row sliver of A over it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PointwiseSlivers(float[] aPacked, int mPad, int m, int k, float[] src, int srcOff, float[] dst, int plane, int cols, int s0, int s1)
    {
        var bBuf = _pwB is { } buf && buf.Length >= k * PwNR ? buf : _pwB = GC.AllocateUninitializedArray<float>(Math.Max(k, PwKC) * PwNR, pinned: true);
        float* tile = stackalloc float[MR * PwNR];
        fixed (float* pa = aPacked, ps = src, pd = dst, pb = bBuf)
            for (int s = s0; s < s1; s++)
            {
                int j0 = s * PwNR, nv = Math.Min(PwNR, cols - j0);
                MoveRuns(pb, ps + srcOff, (nint)k * plane, plane, k, j0, nv, toSliver: true);
                for (int ir = 0; ir < m; ir += MR)
                {
                    for (int pc = 0; pc < k; pc += PwKC)
                    {
                        int kc = Math.Min(PwKC, k - pc);
                        Avx512Kernel<float>.Run(kc, pa + (nint)pc * mPad + (nint)ir * kc, pb + (nint)pc * PwNR, PwNR, tile, PwNR, 1f, 1f, betaZero: pc == 0);
                    }
                    MoveRuns(tile, pd + (nint)ir * plane, (nint)m * plane, plane, Math.Min(MR, m - ir), j0, nv, toSliver: false);
                }
            }
    }

    // Moves `rows` rows of the columns j0 .. j0 + nv between a sliver (row stride 32, column j0 + t at lane t) and the
    // images' planes (image n at images + n·imageStride, row stride plane, position q, for column n·plane + q), one image
    // run at a time: toSliver packs a B sliver from src [N, k, plane]; otherwise a finished tile goes out to its images.
    // Sliver lanes from nv on keep what the buffer held: they only reach tile columns that are never stored.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MoveRuns(float* sliver, float* images, nint imageStride, int plane, int rows, int j0, int nv, bool toSliver)
    {
        for (int t = 0; t < nv;)
        {
            int j = j0 + t, n = j / plane, q = j % plane, len = Math.Min(plane - q, nv - t);
            float* image = images + ((nint)n * imageStride + q), lane = sliver + t;
            if (toSliver) CopyRows(image, plane, lane, PwNR, rows, len);
            else CopyRows(lane, PwNR, image, plane, rows, len);
            t += len;
        }
    }

    // len (1..32) floats of each of `rows` rows, from rows fromStride apart to rows toStride apart.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRows(float* from, nint fromStride, float* to, nint toStride, int rows, int len)
    {
        if (len == PwNR)
            for (int r = 0; r < rows; r++, from += fromStride, to += toStride)
            {
                Vector512.Load(from).Store(to);
                Vector512.Load(from + L).Store(to + L);
            }
        else
            for (int r = 0; r < rows; r++, from += fromStride, to += toStride) CopyMasked(from, to, len);
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

    /// <summary>
    /// dw [O, C] = Σ over images and output positions of dy [N, O, Ho, Wo] (at dyo) · x [N, C, H, W] (at xo) at (2·oh, 2·ow):
    /// the 1×1 stride-2 weight gradient as one GEMM whose K runs over all images' positions. x's even/even phase is split
    /// off and packed once into 32-channel slivers (all of K); work items own 8-row slivers of dw for the whole sum, in
    /// chunks of whole images (about 256 positions) for which they pack their rows of dy, so every weight is summed in the
    /// same order whatever the thread count. dw is overwritten.
    /// </summary>
    private static void BackwardWeights(float[] x, int xo, float[] dy, int dyo, float[] dw, ConvPlan p, int threads)
    {
        int plane = p.OutPlane, k = p.N * plane, cSlivers = (p.C + PwNR - 1) / PwNR, oSlivers = (p.O + MR - 1) / MR;
        var even = ArrayPool<float>.Shared.Rent(p.N * p.C * plane);      // even: [N, C, Ho·Wo] = x[:, :, 0::2, 0::2]
        var bPacked = ArrayPool<float>.Shared.Rent(cSlivers * k * PwNR); // sliver s: [K, 32] at s·K·32 (K = N·Ho·Wo)
        try
        {
            var plan = p;
            StridedIter.ParallelChunks(p.Options, (long)p.N * p.C, plane,
                (lo, hi) => PhasePlanes.Split(x, xo, even, (nint)plan.C * plane, plane, 0, false, false, plan, (int)lo, (int)hi));
            WorkerTeam.For(p.Options, cSlivers * p.N, threads, item =>
            {
                int s = item / plan.N, n = item % plan.N, c0 = s * PwNR;
                fixed (float* pe = even, pb = bPacked)
                    GemmTranspose.RowsToSliver(pe + ((nint)n * plan.C + c0) * plane, plane, Math.Min(PwNR, plan.C - c0), plane, pb + ((nint)s * k + (nint)n * plane) * PwNR, PwNR);
            });
            int parts = Math.Clamp(4 * threads, 1, oSlivers);
            WorkerTeam.For(p.Options, parts, threads, part =>
            {
                int r0 = (int)((long)oSlivers * part / parts), r1 = (int)((long)oSlivers * (part + 1) / parts);
                WeightSlivers(dy, dyo, bPacked, dw, plan, k, cSlivers, r0, r1);
            });
        }
        finally
        {
            ArrayPool<float>.Shared.Return(even);
            ArrayPool<float>.Shared.Return(bPacked);
        }
    }

    [ThreadStatic] private static float[]? _pwA;

    // dw rows of slivers [r0, r1), summed over K in chunks of whole images (about PwKC positions): per chunk the item's
    // rows of dy are packed (8-row slivers) and every (row sliver, 32-channel sliver) tile of dw takes the chunk's sum.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightSlivers(float[] dy, int dyo, float[] bPacked, float[] dw, in ConvPlan p, int k, int cSlivers, int r0, int r1)
    {
        int plane = p.OutPlane, perChunk = Math.Max(1, PwKC / plane), rows = (r1 - r0) * MR;
        int aLength = rows * perChunk * plane;
        var aBuf = _pwA is { } buf && buf.Length >= aLength ? buf : _pwA = GC.AllocateUninitializedArray<float>(aLength, pinned: true);
        float* tile = stackalloc float[MR * PwNR];
        fixed (float* pdy = dy, pb = bPacked, pdw = dw, pa = aBuf)
            for (int n0 = 0; n0 < p.N; n0 += perChunk)
            {
                int cnt = Math.Min(perChunk, p.N - n0), kc = cnt * plane, j0 = n0 * plane;
                bool first = n0 == 0;
                // a: slivers of [kc, 8]: a[(rs − r0)·kc·8 + (i·plane + q)·8 + r] = dy[n0 + i, rs·8 + r, q]
                for (int rs = r0; rs < r1; rs++)
                    for (int i = 0; i < cnt; i++)
                        GemmTranspose.RowsToSliver(pdy + dyo + ((nint)(n0 + i) * p.O + rs * MR) * plane, plane, Math.Min(MR, p.O - rs * MR), plane,
                            pa + ((nint)(rs - r0) * kc + (nint)i * plane) * MR, MR);
                for (int rs = r0; rs < r1; rs++)
                {
                    int o0 = rs * MR, mr = Math.Min(MR, p.O - o0);
                    float* a = pa + (nint)(rs - r0) * kc * MR;
                    for (int s = 0; s < cSlivers; s++)
                    {
                        int c0 = s * PwNR, nc = Math.Min(PwNR, p.C - c0);
                        float* b = pb + ((nint)s * k + j0) * PwNR, c = pdw + (nint)o0 * p.C + c0;
                        if (mr == MR && nc == PwNR) { Avx512Kernel<float>.Run(kc, a, b, PwNR, c, p.C, 1f, 1f, betaZero: first); continue; }
                        Avx512Kernel<float>.Run(kc, a, b, PwNR, tile, PwNR, 1f, 1f, betaZero: true);
                        for (int r = 0; r < mr; r++)
                            for (int cc = 0; cc < nc; cc++) c[(nint)r * p.C + cc] = first ? tile[r * PwNR + cc] : c[(nint)r * p.C + cc] + tile[r * PwNR + cc];
                    }
                }
            }
    }
}
