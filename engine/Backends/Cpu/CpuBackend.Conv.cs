using System.Buffers;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu;

// Conv2d as im2col + one GEMM per chunk of images and group. Images are batched into the GEMM's column
// dimension (col [K, nb·Ho·Wo]) until it is wide enough for the GEMM to run near peak: the deep ResNet layers
// have tiny planes (7×7, 4×4) whose per-image GEMMs are skinny and slow. The chunk is bounded so the column
// scratch stays under ConvMaxColElements. Im2col, col2im and the row regrouping between [N, O, P] and
// [O, nb·P] run in parallel over disjoint rows; the GEMM uses its own threads. The chunking depends only on
// the shapes, and every output element is produced in a fixed order, so results do not depend on timing.
public sealed partial class CpuBackend
{
    /// <summary>GEMM column count (nb·Ho·Wo) a chunk of images aims for.</summary>
    internal static int ConvTargetCols { get; set; } = 2048;

    /// <summary>Upper bound on the column scratch of one chunk, in elements (16 MiB of float32).</summary>
    internal static int ConvMaxColElements { get; set; } = 1 << 22;

    // Images per chunk: enough to reach ConvTargetCols, no more than the scratch bound allows (at least one).
    internal static int ConvChunk(in ConvPlan p)
    {
        int plane = Math.Max(p.OutPlane, 1);
        long want = (ConvTargetCols + plane - 1) / plane;
        long cap = Math.Max(1, ConvMaxColElements / Math.Max(1L, (long)Math.Max(p.K, p.Og) * plane));
        int nb = (int)Math.Clamp(Math.Min(want, cap), 1, Math.Max(p.N, 1));
        int chunks = (p.N + nb - 1) / Math.Max(nb, 1);
        return Math.Max(1, (p.N + chunks - 1) / Math.Max(chunks, 1)); // equal chunks (16 images: 8 + 8, not 11 + 5)
    }

    /// <inheritdoc />
    public Storage Conv2dForward(Storage x, Layout lx, Storage w, Layout lw, Conv2dGeometry geometry)
    {
        long t0 = ConvProfileStart();
        var r = Conv2dForwardCore(x, lx, w, lw, geometry);
        ConvProfileEnd("fwd", t0, lx.Shape, lw.Shape, geometry);
        return r;
    }

    private Storage Conv2dForwardCore(Storage x, Layout lx, Storage w, Layout lw, Conv2dGeometry geometry) => x.DType switch
    {
        DType.Float32 => ConvForwardT<float>(x, lx, w, lw, new ConvPlan(lx.Shape, lw.Shape, geometry)),
        DType.Float64 => ConvForwardT<double>(x, lx, w, lw, new ConvPlan(lx.Shape, lw.Shape, geometry)),
        _ => throw new NotSupportedException($"conv2d: float tensors only, got {x.DType.Name()}"),
    };

    /// <inheritdoc />
    public Storage Conv2dBackwardData(Storage dy, Layout ldy, Storage w, Layout lw, Conv2dGeometry geometry, int[] inputShape)
    {
        long t0 = ConvProfileStart();
        var r = Conv2dBackwardDataCore(dy, ldy, w, lw, geometry, inputShape);
        ConvProfileEnd("bwd-data", t0, inputShape, lw.Shape, geometry);
        return r;
    }

    private Storage Conv2dBackwardDataCore(Storage dy, Layout ldy, Storage w, Layout lw, Conv2dGeometry geometry, int[] inputShape) => dy.DType switch
    {
        DType.Float32 => ConvBackwardDataT<float>(dy, ldy, w, lw, new ConvPlan(inputShape, lw.Shape, geometry)),
        DType.Float64 => ConvBackwardDataT<double>(dy, ldy, w, lw, new ConvPlan(inputShape, lw.Shape, geometry)),
        _ => throw new NotSupportedException($"conv2d backward: float tensors only, got {dy.DType.Name()}"),
    };

    /// <inheritdoc />
    public Storage Conv2dBackwardWeight(Storage x, Layout lx, Storage dy, Layout ldy, Conv2dGeometry geometry, int[] weightShape)
    {
        long t0 = ConvProfileStart();
        var r = Conv2dBackwardWeightCore(x, lx, dy, ldy, geometry, weightShape);
        ConvProfileEnd("bwd-weights", t0, lx.Shape, weightShape, geometry);
        return r;
    }

    private Storage Conv2dBackwardWeightCore(Storage x, Layout lx, Storage dy, Layout ldy, Conv2dGeometry geometry, int[] weightShape) => x.DType switch
    {
        DType.Float32 => ConvBackwardWeightT<float>(x, lx, dy, ldy, new ConvPlan(lx.Shape, weightShape, geometry)),
        DType.Float64 => ConvBackwardWeightT<double>(x, lx, dy, ldy, new ConvPlan(lx.Shape, weightShape, geometry)),
        _ => throw new NotSupportedException($"conv2d backward: float tensors only, got {x.DType.Name()}"),
    };

    private static long ConvProfileStart() => Autograd.OpProfile.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;

    // With the op profile on, each conv call is also charged to a per-shape key, e.g. "conv bwd-data 3x3/s2 64→128 56²".
    private static void ConvProfileEnd(string phase, long t0, int[] xShape, int[] wShape, Conv2dGeometry g)
    {
        if (t0 != 0) ConvProfileSince($"  conv {phase} {wShape[2]}x{wShape[3]}/s{g.StrideH} {xShape[1]}→{wShape[0]} {xShape[2]}²", t0);
    }

    // Charges the time since t0 (from ConvProfileStart; 0 when the profile is off) to key.
    private static void ConvProfileSince(string key, long t0)
    {
        if (t0 != 0) Autograd.OpProfile.Add(key, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
    }

    // col [K, cnt·P] ← unfold of images [n0, n0+cnt) of group g.
    private static void ConvUnfold<T>(T[] x, int xOff, int cnt, ConvPlan p, T[] col) where T : unmanaged, INumber<T>
    {
        long t0 = ConvProfileStart();
        int imageStride = p.C * p.InPlane, ld = cnt * p.OutPlane;
        StridedIter.ParallelChunks(p.K, ld, (lo, hi) => Im2Col.Unfold(x, xOff, imageStride, cnt, p, col, ld, (int)lo, (int)hi, 0, p.Ho));
        ConvProfileSince("    unfold (batched)", t0);
    }

    // Packed-B twin of ConvUnfold: col ← unfold of images [n0, n0+cnt) in the GEMM's packed layout.
    private static void ConvUnfoldPacked<T>(T[] x, int xOff, int cnt, ConvPlan p, GemmPackedLayout layout, T[] col) where T : unmanaged, INumber<T>
    {
        long t0 = ConvProfileStart();
        int imageStride = p.C * p.InPlane, ld = cnt * p.OutPlane;
        StridedIter.ParallelChunks(p.K, ld, (lo, hi) => Im2ColPacked.Unfold(x, xOff, imageStride, cnt, p, layout, col, (int)lo, (int)hi, 0, p.Ho));
        ConvProfileSince("    unfold (batched)", t0);
    }

    // Transposed packed twin of ConvUnfold for backward-weights: col ← colᵀ of images [n0, n0+cnt), packed for the GEMM.
    private static void ConvUnfoldPackedTransposed<T>(T[] x, int xOff, int cnt, ConvPlan p, GemmPackedLayout layout, T[] col) where T : unmanaged, INumber<T>
    {
        long t0 = ConvProfileStart();
        int imageStride = p.C * p.InPlane, ld = cnt * p.OutPlane, slivers = layout.PaddedCols(p.K) / layout.NR;
        StridedIter.ParallelChunks(slivers, (long)layout.NR * ld,
            (lo, hi) => Im2ColPacked.UnfoldTransposed(x, xOff, imageStride, cnt, p, layout, col, (int)lo, (int)hi, 0, p.Ho));
        ConvProfileSince("    unfold (batched)", t0);
    }

    // Whether a conv with a column matrix unfolds it in the GEMM's packed-B layout (float32/float64 kernels only).
    private static bool ConvPacksB<T>() where T : unmanaged => Im2ColPacked.Enabled && (typeof(T) == typeof(float) || typeof(T) == typeof(double));

    // Moves rows [Og] of images [n0, n0+cnt) between [N, O, P] (at off) and the chunk matrix [Og, cnt·P].
    private static void ConvRegroup<T>(T[] images, int off, int cnt, ConvPlan p, T[] chunk, bool toChunk) where T : unmanaged
    {
        long t0 = ConvProfileStart();
        int imageStride = p.O * p.OutPlane, ld = cnt * p.OutPlane;
        StridedIter.ParallelChunks(p.Og, ld, (lo, hi) => Im2Col.Regroup(images, off, imageStride, p.OutPlane, cnt, chunk, ld, toChunk, (int)lo, (int)hi));
        ConvProfileSince("    regroup (batched)", t0);
    }

    private static Storage ConvForwardT<T>(Storage xs, Layout lx, Storage ws, Layout lw, ConvPlan p) where T : unmanaged, INumber<T>
    {
        var (x, xo) = NchwDense.Of<T>(xs, lx); // x: [N, C, H, W]
        var (w, wo) = NchwDense.Of<T>(ws, lw); // w: [O, Cg, kh, kw] = G × [Og, K]
        var ys = NewStorage(xs.DType, p.N * p.O * p.OutPlane);
        var y = ys.Array<T>();                 // y: [N, O, Ho, Wo] = N × G × [Og, Ho·Wo]
        if (p.OutPlane == 0 || p.N == 0) return ys;
        if (typeof(T) == typeof(float) && ConvImplicit.Applies(p))
        {
            long t0 = ConvProfileStart();
            ConvImplicit.Forward((float[])(object)x, xo, (float[])(object)w, wo, (float[])(object)y, p, Threads);
            ConvProfileSince("    implicit gemm", t0);
            return ys;
        }
        if (typeof(T) == typeof(float) && ConvImplicit.AppliesStride2(p))
        {
            long t0 = ConvProfileStart();
            ConvImplicit.ForwardStride2((float[])(object)x, xo, (float[])(object)w, wo, (float[])(object)y, p, Threads);
            ConvProfileSince("    implicit gemm (stride 2)", t0);
            return ys;
        }
        // 1×1 stride-2 convs the phase-plane path leaves (images side by side, 14² → 7²): one GEMM over all images' columns.
        if (typeof(T) == typeof(float) && ConvImplicit.AppliesPointwiseStride2(p))
        {
            long t0 = ConvProfileStart();
            ConvImplicit.ForwardPointwiseStride2((float[])(object)x, xo, (float[])(object)w, wo, (float[])(object)y, p, Threads);
            ConvProfileSince("    1x1 stride-2 gemm", t0);
            return ys;
        }
        if (ConvTiled(p)) { ConvForwardTiled(x, xo, w, wo, y, p); return ys; }
        int nb = ConvChunk(p), plane = p.OutPlane;
        bool packB = ConvPacksB<T>();
        var layout = packB ? CpuGemm.PackedLayout<T>() : default;
        int colLength = packB ? (int)layout.Length(p.K, nb * plane) : p.K * nb * plane;
        var col = p.Direct && nb == 1 ? null : ArrayPool<T>.Shared.Rent(colLength);  // col: [K, nb·P], plain or packed
        var tmp = nb > 1 ? ArrayPool<T>.Shared.Rent(p.Og * nb * plane) : null;       // tmp: [Og, nb·P]
        try
        {
            for (int n0 = 0; n0 < p.N; n0 += nb)
            {
                int cnt = Math.Min(nb, p.N - n0), cols = cnt * plane;
                for (int g = 0; g < p.G; g++)
                {
                    int xOff = xo + (n0 * p.C + g * p.Cg) * p.InPlane, yOff = (n0 * p.O + g * p.Og) * plane;
                    // [Og, cnt·P] = W_g · col: [Og, K] · [K, cnt·P]; a single image writes y directly.
                    Span<T> c = tmp is null || cnt == 1 ? y.AsSpan(yOff, p.Og * plane) : tmp.AsSpan(0, p.Og * cols);
                    var wg = w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K);
                    if (col is not null && packB)
                    {
                        ConvUnfoldPacked(x, xOff, cnt, p, layout, col);
                        long t0 = ConvProfileStart();
                        CpuGemm.GemmPacked(layout, false, p.Og, cols, p.K, T.One, wg, p.K, col.AsSpan(0, (int)layout.Length(p.K, cols)),
                            T.Zero, c, cols, Threads);
                        ConvProfileSince("    gemm (batched, packed B)", t0);
                    }
                    else
                    {
                        if (col is not null) ConvUnfold(x, xOff, cnt, p, col);
                        ReadOnlySpan<T> b = col is null ? x.AsSpan(xOff, p.ColLength) : col.AsSpan(0, p.K * cols);
                        CpuGemm.Gemm(false, false, p.Og, cols, p.K, T.One, wg, p.K, b, cols, T.Zero, c, cols);
                    }
                    if (tmp is not null && cnt > 1) ConvRegroup(y, yOff, cnt, p, tmp, toChunk: false);
                }
            }
        }
        finally
        {
            if (col is not null) ArrayPool<T>.Shared.Return(col);
            if (tmp is not null) ArrayPool<T>.Shared.Return(tmp);
        }
        return ys;
    }

    /// <summary>Lets stride-1 backward-data run as a forward conv (tests turn it off to reach the col2im path).</summary>
    internal static bool ConvBackwardDataAsForward { get; set; } = true;

    // Stride 1, dilation 1: dx = conv2d(dy, w′, padding k − 1 − p) with w′[g·Cg + c, o, i, j] = w[g·Og + o, c, kh−1−i, kw−1−j]
    // (the kernel flipped, in and out channels swapped per group). That reuses the forward's fast schedules instead of
    // col2im, whose short row adds dominate on small planes.
    private static bool ConvBackwardDataByForward(in ConvPlan p) => ConvBackwardDataAsForward
        && p.Geo is { StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1 } && p.Geo.PadH <= p.Kh - 1 && p.Geo.PadW <= p.Kw - 1;

    private static Storage ConvBackwardDataViaForward<T>(Storage dys, Layout ldy, Storage ws, Layout lw, ConvPlan p) where T : unmanaged, INumber<T>
    {
        var (w, wo) = NchwDense.Of<T>(ws, lw); // w: [O, Cg, kh, kw]
        var geo = new Conv2dGeometry(1, 1, p.Kh - 1 - p.Geo.PadH, p.Kw - 1 - p.Geo.PadW, 1, 1, p.G);
        int[] wShape = [p.C, p.Og, p.Kh, p.Kw];
        var plan = new ConvPlan(ldy.Shape, wShape, geo);
        if (typeof(T) == typeof(float) && ConvImplicit.Applies(plan))
        {
            // The implicit conv packs its A straight from w with the taps reversed: no flipped copy.
            var (dy, dyo) = NchwDense.Of<T>(dys, ldy);
            var dxs = NewStorage(dys.DType, p.N * p.C * p.InPlane);
            long t0 = ConvProfileStart();
            ConvImplicit.Forward((float[])(object)dy, dyo, (float[])(object)w, wo, dxs.Array<float>(), plan, Threads, flipped: true);
            ConvProfileSince("    implicit gemm", t0);
            return dxs;
        }
        int kk = p.Kh * p.Kw, len = p.O * p.Cg * kk;
        var wfs = NewStorage(ws.DType, len);
        var wf = wfs.Array<T>();                // w′: [C, Og, kh, kw]
        try
        {
            long t0 = ConvProfileStart();
            FlipKernel(w, wo, wf, p);
            ConvProfileSince("    weight flip", t0);
            return ConvForwardT<T>(dys, ldy, wfs, Layout.Contiguous(wShape), plan);
        }
        finally { wfs.Release(); }
    }

    /// <summary>Whether the kernel flip uses AVX-512 lane reversals (tests turn it off to compare with the scalar copy).</summary>
    internal static bool FlipVec { get; set; } = true;

    // w′[g·Cg + c, o, i, j] = w[g·Og + o, c, kh−1−i, kw−1−j], blocks of 16 input channels over the threads.
    internal static unsafe void FlipKernel<T>(T[] w, int wo, T[] wf, ConvPlan p) where T : unmanaged
    {
        const int cb = 16;
        int kk = p.Kh * p.Kw, cBlocks = (p.Cg + cb - 1) / cb;
        // float32 kernels of 2..16 taps: lane q of the reversal takes tap kk − 1 − q.
        bool vec = typeof(T) == typeof(float) && FlipVec && Avx512F.IsSupported && kk is > 1 and <= 16;
        var reverse = Vector512.Create(kk - 1) - Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        var taps = Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(kk)).AsSingle();
        StridedIter.ParallelChunks((long)p.G * cBlocks, (long)p.Og * cb * kk, (lo, hi) =>
        {
            fixed (T* pw = w, pf = wf)
                for (long item = lo; item < hi; item++)
                {
                    int g = (int)(item / cBlocks), c0 = (int)(item % cBlocks) * cb, c1 = Math.Min(p.Cg, c0 + cb);
                    // 16 × 16 (o, c) tiles: both sides then move runs of 16·kh·kw contiguous values.
                    for (int o0 = 0; o0 < p.Og; o0 += cb)
                    {
                        int o1 = Math.Min(p.Og, o0 + cb);
                        for (int c = c0; c < c1; c++)
                        {
                            T* dst = pf + ((long)(g * p.Cg + c) * p.Og + o0) * kk;
                            T* src = pw + wo + ((long)(g * p.Og + o0) * p.Cg + c) * kk + kk - 1;
                            int ol = o0;
                            if (vec)
                            {
                                // One masked load, a lane reversal and a full 16-lane store per (o, c); each store's spill past its
                                // kk values is overwritten by the next o's, so only stores that end inside this run go this way.
                                float* s0 = (float*)(src - (kk - 1));
                                for (; (o1 - ol) * kk >= 16; ol++, dst += kk, s0 += (long)p.Cg * kk)
                                    Avx512F.PermuteVar16x32(Avx512F.MaskLoad(s0, taps, Vector512<float>.Zero), reverse).Store((float*)dst);
                                src += (long)(ol - o0) * p.Cg * kk;
                            }
                            for (; ol < o1; ol++, dst += kk, src += (long)p.Cg * kk)
                                for (int q = 0; q < kk; q++) dst[q] = src[-q];
                        }
                    }
                }
        });
    }

    private static Storage ConvBackwardDataT<T>(Storage dys, Layout ldy, Storage ws, Layout lw, ConvPlan p) where T : unmanaged, INumber<T>
    {
        if (p.OutPlane > 0 && p.N > 0 && ConvBackwardDataByForward(p)) return ConvBackwardDataViaForward<T>(dys, ldy, ws, lw, p);
        var (dy, dyo) = NchwDense.Of<T>(dys, ldy); // dy: [N, O, Ho, Wo]
        var (w, wo) = NchwDense.Of<T>(ws, lw);     // w: [O, Cg, kh, kw]
        if (typeof(T) == typeof(float) && ConvImplicit.AppliesStride2BackwardData(p))
        {
            // Four stride-1 implicit GEMMs over dy, one per phase of dx: no column matrix and no col2im.
            var dxi = NewStorage(dys.DType, p.N * p.C * p.InPlane);
            long t0 = ConvProfileStart();
            ConvImplicit.BackwardDataStride2((float[])(object)dy, dyo, (float[])(object)w, wo, dxi.Array<float>(), p, Threads);
            ConvProfileSince("    implicit stride-2 phases", t0);
            return dxi;
        }
        if (typeof(T) == typeof(float) && ConvImplicit.AppliesPointwiseStride2(p))
        {
            // dx's even/even phase = Wᵀ · dy as one GEMM over all images' columns, interleaved with zeros into dx.
            var dxi = NewStorage(dys.DType, p.N * p.C * p.InPlane);
            long t0 = ConvProfileStart();
            ConvImplicit.BackwardDataPointwiseStride2((float[])(object)dy, dyo, (float[])(object)w, wo, dxi.Array<float>(), p, Threads);
            ConvProfileSince("    1x1 stride-2 gemm", t0);
            return dxi;
        }
        bool tiled = p.OutPlane > 0 && p.N > 0 && (ConvTiled(p) || ConvBackwardDataTiledAnyPlane(p));
        // The tiled schedule clears each image right before its col2im, while it is in cache (a separate clear of all of
        // dx was a third of a 1×1 stride-2 backward-data at 28²).
        var dxs = NewStorage(dys.DType, p.N * p.C * p.InPlane, zero: !tiled);
        var dx = dxs.Array<T>();                   // dx: [N, C, H, W]
        if (p.OutPlane == 0 || p.N == 0) return dxs;
        if (tiled) { ConvBackwardDataTiled(dy, dyo, w, wo, dx, p); return dxs; }
        int nb = ConvChunk(p), plane = p.OutPlane, imageStride = p.C * p.InPlane;
        var col = p.Direct && nb == 1 ? null : ArrayPool<T>.Shared.Rent(p.K * nb * plane); // dcol: [K, nb·P]
        var dyb = nb > 1 ? ArrayPool<T>.Shared.Rent(p.Og * nb * plane) : null;            // dyb: [Og, nb·P]
        try
        {
            for (int n0 = 0; n0 < p.N; n0 += nb)
            {
                int cnt = Math.Min(nb, p.N - n0), cols = cnt * plane;
                for (int g = 0; g < p.G; g++)
                {
                    int dxOff = (n0 * p.C + g * p.Cg) * p.InPlane, dyOff = dyo + (n0 * p.O + g * p.Og) * plane;
                    ReadOnlySpan<T> b = dy.AsSpan(dyOff, p.Og * plane);
                    if (dyb is not null && cnt > 1) { ConvRegroup(dy, dyOff, cnt, p, dyb, toChunk: true); b = dyb.AsSpan(0, p.Og * cols); }
                    // dcol = W_gᵀ · dy: [K, Og] · [Og, cnt·P] (written straight into dx for a single-image direct 1×1 conv)
                    var c = col is null ? dx.AsSpan(dxOff, p.ColLength) : col.AsSpan(0, p.K * cols);
                    CpuGemm.Gemm(true, false, p.K, cols, p.Og, T.One, w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K), p.K,
                        b, cols, T.Zero, c, cols);
                    if (col is null) continue;
                    long t0 = ConvProfileStart();
                    StridedIter.ParallelChunks(cnt * p.Cg, p.Kh * p.Kw * plane,
                        (lo, hi) => Im2Col.Fold(col, cols, p, dx, dxOff, imageStride, (int)lo, (int)hi, 0, p.Ho));
                    ConvProfileSince("    fold (batched)", t0);
                }
            }
        }
        finally
        {
            if (col is not null) ArrayPool<T>.Shared.Return(col);
            if (dyb is not null) ArrayPool<T>.Shared.Return(dyb);
        }
        return dxs;
    }

    private static Storage ConvBackwardWeightT<T>(Storage xs, Layout lx, Storage dys, Layout ldy, ConvPlan p) where T : unmanaged, INumber<T>
    {
        var (x, xo) = NchwDense.Of<T>(xs, lx);     // x: [N, C, H, W]
        var (dy, dyo) = NchwDense.Of<T>(dys, ldy); // dy: [N, O, Ho, Wo]
        var dws = NewStorage(xs.DType, p.O * p.K, zero: true);
        var dw = dws.Array<T>();                   // dw: [O, Cg, kh, kw] = G × [Og, K]
        if (p.OutPlane == 0 || p.N == 0) return dws;
        if (typeof(T) == typeof(float) && ConvImplicit.AppliesPointwiseStride2Weights(p))
        {
            long t0 = ConvProfileStart();
            ConvImplicit.BackwardWeightsPointwiseStride2((float[])(object)x, xo, (float[])(object)dy, dyo, (float[])(object)dw, p, Threads);
            ConvProfileSince("    1x1 stride-2 gemm", t0);
            return dws;
        }
        if (typeof(T) == typeof(float) && ConvWeightGrad.Applies(p))
        {
            long t0 = ConvProfileStart();
            ConvWeightGrad.BackwardWeights((float[])(object)x, xo, (float[])(object)dy, dyo, (float[])(object)dw, p, Threads);
            ConvProfileSince("    blocked backward-weights", t0);
            return dws;
        }
        if (ConvTiled(p)) { ConvBackwardWeightTiled(x, xo, dy, dyo, dw, p); return dws; }
        int nb = ConvChunk(p), plane = p.OutPlane;
        bool packB = ConvPacksB<T>();
        var layout = packB ? CpuGemm.PackedLayout<T>() : default;
        int colLength = packB ? (int)layout.Length(nb * plane, p.K) : p.K * nb * plane;
        var col = p.Direct && nb == 1 ? null : ArrayPool<T>.Shared.Rent(colLength);  // col: [K, nb·P], or colᵀ packed
        var dyb = nb > 1 ? ArrayPool<T>.Shared.Rent(p.Og * nb * plane) : null;       // dyb: [Og, nb·P]
        try
        {
            // dW_g += dy · colᵀ: [Og, cnt·P] · [cnt·P, K], chunks in order.
            for (int n0 = 0; n0 < p.N; n0 += nb)
            {
                int cnt = Math.Min(nb, p.N - n0), cols = cnt * plane;
                for (int g = 0; g < p.G; g++)
                {
                    int xOff = xo + (n0 * p.C + g * p.Cg) * p.InPlane, dyOff = dyo + (n0 * p.O + g * p.Og) * plane;
                    ReadOnlySpan<T> a = dy.AsSpan(dyOff, p.Og * plane);
                    if (dyb is not null && cnt > 1) { ConvRegroup(dy, dyOff, cnt, p, dyb, toChunk: true); a = dyb.AsSpan(0, p.Og * cols); }
                    T beta = n0 == 0 ? T.Zero : T.One;
                    var dwg = dw.AsSpan(g * p.Og * p.K, p.Og * p.K);
                    if (col is not null && packB)
                    {
                        ConvUnfoldPackedTransposed(x, xOff, cnt, p, layout, col);
                        long t0 = ConvProfileStart();
                        CpuGemm.GemmPacked(layout, false, p.Og, p.K, cols, T.One, a, cols, col.AsSpan(0, (int)layout.Length(cols, p.K)),
                            beta, dwg, p.K, Threads);
                        ConvProfileSince("    gemm (batched, packed colᵀ)", t0);
                        continue;
                    }
                    if (col is not null) ConvUnfold(x, xOff, cnt, p, col);
                    ReadOnlySpan<T> b = col is null ? x.AsSpan(xOff, p.ColLength) : col.AsSpan(0, p.K * cols);
                    CpuGemm.Gemm(false, true, p.Og, p.K, cols, T.One, a, cols, b, cols, beta, dwg, p.K);
                }
            }
        }
        finally
        {
            if (col is not null) ArrayPool<T>.Shared.Return(col);
            if (dyb is not null) ArrayPool<T>.Shared.Return(dyb);
        }
        return dws;
    }
}
