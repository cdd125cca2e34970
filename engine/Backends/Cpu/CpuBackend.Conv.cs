using System.Buffers;
using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

// Conv2d as im2col + GEMM per image and group. Two schedules, never nested (nested parallel loops
// oversubscribe the cores): a large per-image GEMM runs images one after another with the GEMM's own
// threads and a parallel im2col/col2im; small GEMMs run images in parallel, each on one thread. Every
// output element is produced in a fixed order, so results do not depend on timing.
public sealed partial class CpuBackend
{
    // Matches the GEMM's own threshold for going parallel.
    private const long ConvGemmParallelFlops = 1L << 22;

    private static bool ConvImagesInParallel(in ConvPlan p) =>
        Threads > 1 && p.N > 1 && 2L * p.Og * p.K * p.OutPlane < ConvGemmParallelFlops && p.N * p.MacsPerImage >= 1 << 15;

    /// <inheritdoc />
    public Storage Conv2dForward(Storage x, Layout lx, Storage w, Layout lw, Conv2dGeometry geometry) => x.DType switch
    {
        DType.Float32 => ConvForwardT<float>(x, lx, w, lw, new ConvPlan(lx.Shape, lw.Shape, geometry)),
        DType.Float64 => ConvForwardT<double>(x, lx, w, lw, new ConvPlan(lx.Shape, lw.Shape, geometry)),
        _ => throw new NotSupportedException($"conv2d: float tensors only, got {x.DType.Name()}"),
    };

    /// <inheritdoc />
    public Storage Conv2dBackwardData(Storage dy, Layout ldy, Storage w, Layout lw, Conv2dGeometry geometry, int[] inputShape) => dy.DType switch
    {
        DType.Float32 => ConvBackwardDataT<float>(dy, ldy, w, lw, new ConvPlan(inputShape, lw.Shape, geometry)),
        DType.Float64 => ConvBackwardDataT<double>(dy, ldy, w, lw, new ConvPlan(inputShape, lw.Shape, geometry)),
        _ => throw new NotSupportedException($"conv2d backward: float tensors only, got {dy.DType.Name()}"),
    };

    /// <inheritdoc />
    public Storage Conv2dBackwardWeight(Storage x, Layout lx, Storage dy, Layout ldy, Conv2dGeometry geometry, int[] weightShape) => x.DType switch
    {
        DType.Float32 => ConvBackwardWeightT<float>(x, lx, dy, ldy, new ConvPlan(lx.Shape, weightShape, geometry)),
        DType.Float64 => ConvBackwardWeightT<double>(x, lx, dy, ldy, new ConvPlan(lx.Shape, weightShape, geometry)),
        _ => throw new NotSupportedException($"conv2d backward: float tensors only, got {x.DType.Name()}"),
    };

    // Runs image(n, scratch, innerParallel) for every image under the schedule the plan calls for;
    // scratch is a [K, Ho·Wo] column buffer (null for direct 1×1 convs).
    private static void ConvForEachImage<T>(ConvPlan p, Action<int, T[]?, bool> image) where T : unmanaged
    {
        if (ConvImagesInParallel(p))
        {
            StridedIter.ParallelChunks(p.N, p.MacsPerImage, (lo, hi) =>
            {
                var col = p.Direct ? null : ArrayPool<T>.Shared.Rent(p.ColLength);
                try { for (int n = (int)lo; n < hi; n++) image(n, col, false); }
                finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
            });
            return;
        }
        var scratch = p.Direct ? null : ArrayPool<T>.Shared.Rent(p.ColLength);
        try { for (int n = 0; n < p.N; n++) image(n, scratch, true); }
        finally { if (scratch is not null) ArrayPool<T>.Shared.Return(scratch); }
    }

    // col [K, Ho·Wo] ← unfold of image-group x[xOff..], split over rows of col when asked.
    private static void ConvUnfold<T>(T[] x, int xOff, ConvPlan p, T[] col, bool parallel) where T : unmanaged, INumber<T>
    {
        if (!parallel) { Im2Col.Unfold(x, xOff, p, col.AsSpan(0, p.ColLength)); return; }
        StridedIter.ParallelChunks(p.K, p.OutPlane, (lo, hi) => Im2Col.Unfold(x, xOff, p, col.AsSpan(0, p.ColLength), (int)lo, (int)hi));
    }

    private static Storage ConvForwardT<T>(Storage xs, Layout lx, Storage ws, Layout lw, ConvPlan p) where T : unmanaged, INumber<T>
    {
        var (x, xo) = NchwDense.Of<T>(xs, lx); // x: [N, C, H, W]
        var (w, wo) = NchwDense.Of<T>(ws, lw); // w: [O, Cg, kh, kw] = G × [Og, K]
        var ys = NewStorage(xs.DType, p.N * p.O * p.OutPlane);
        var y = ys.Array<T>();                 // y: [N, O, Ho, Wo] = N × G × [Og, Ho·Wo]
        if (p.OutPlane == 0) return ys;
        ConvForEachImage<T>(p, (n, col, inner) =>
        {
            for (int g = 0; g < p.G; g++)
            {
                int xOff = xo + (n * p.C + g * p.Cg) * p.InPlane;
                if (col is not null) ConvUnfold(x, xOff, p, col, inner);
                ReadOnlySpan<T> b = col is null ? x.AsSpan(xOff, p.ColLength) : col.AsSpan(0, p.ColLength);
                // y[n, g] = W_g · col: [Og, K] · [K, Ho·Wo]
                CpuGemm.Gemm(false, false, p.Og, p.OutPlane, p.K, T.One,
                    w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K), p.K, b, p.OutPlane,
                    T.Zero, y.AsSpan((n * p.O + g * p.Og) * p.OutPlane, p.Og * p.OutPlane), p.OutPlane);
            }
        });
        return ys;
    }

    private static Storage ConvBackwardDataT<T>(Storage dys, Layout ldy, Storage ws, Layout lw, ConvPlan p) where T : unmanaged, INumber<T>
    {
        var (dy, dyo) = NchwDense.Of<T>(dys, ldy); // dy: [N, O, Ho, Wo]
        var (w, wo) = NchwDense.Of<T>(ws, lw);     // w: [O, Cg, kh, kw]
        var dxs = NewStorage(dys.DType, p.N * p.C * p.InPlane, zero: true);
        var dx = dxs.Array<T>();                   // dx: [N, C, H, W]
        if (p.OutPlane == 0) return dxs;
        int perChannel = p.Kh * p.Kw * p.OutPlane;
        ConvForEachImage<T>(p, (n, col, inner) =>
        {
            for (int g = 0; g < p.G; g++)
            {
                int dxOff = (n * p.C + g * p.Cg) * p.InPlane;
                // dcol = W_gᵀ · dy[n, g]: [K, Og] · [Og, Ho·Wo] (written straight into dx for direct 1×1 convs)
                var c = col is null ? dx.AsSpan(dxOff, p.ColLength) : col.AsSpan(0, p.ColLength);
                CpuGemm.Gemm(true, false, p.K, p.OutPlane, p.Og, T.One,
                    w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K), p.K,
                    dy.AsSpan(dyo + (n * p.O + g * p.Og) * p.OutPlane, p.Og * p.OutPlane), p.OutPlane,
                    T.Zero, c, p.OutPlane);
                if (col is null) continue;
                if (!inner) Im2Col.Fold<T>(col.AsSpan(0, p.ColLength), p, dx, dxOff);
                else StridedIter.ParallelChunks(p.Cg, perChannel, (lo, hi) => Im2Col.Fold<T>(col.AsSpan(0, p.ColLength), p, dx, dxOff, (int)lo, (int)hi));
            }
        });
        return dxs;
    }

    private static Storage ConvBackwardWeightT<T>(Storage xs, Layout lx, Storage dys, Layout ldy, ConvPlan p) where T : unmanaged, INumber<T>
    {
        var (x, xo) = NchwDense.Of<T>(xs, lx);     // x: [N, C, H, W]
        var (dy, dyo) = NchwDense.Of<T>(dys, ldy); // dy: [N, O, Ho, Wo]
        int wLen = p.O * p.K;
        var dws = NewStorage(xs.DType, wLen, zero: true);
        var dw = dws.Array<T>();                   // dw: [O, Cg, kh, kw] = G × [Og, K]
        if (p.OutPlane == 0 || p.N == 0) return dws;

        // dW_g += dy[n, g] · colᵀ: [Og, Ho·Wo] · [Ho·Wo, K], images in order.
        void Accumulate(int lo, int hi, T[] acc, T[]? col, bool inner)
        {
            for (int n = lo; n < hi; n++)
                for (int g = 0; g < p.G; g++)
                {
                    int xOff = xo + (n * p.C + g * p.Cg) * p.InPlane;
                    if (col is not null) ConvUnfold(x, xOff, p, col, inner);
                    ReadOnlySpan<T> b = col is null ? x.AsSpan(xOff, p.ColLength) : col.AsSpan(0, p.ColLength);
                    CpuGemm.Gemm(false, true, p.Og, p.K, p.OutPlane, T.One,
                        dy.AsSpan(dyo + (n * p.O + g * p.Og) * p.OutPlane, p.Og * p.OutPlane), p.OutPlane,
                        b, p.OutPlane, T.One, acc.AsSpan(g * p.Og * p.K, p.Og * p.K), p.K);
                }
        }

        if (!ConvImagesInParallel(p))
        {
            var col = p.Direct ? null : ArrayPool<T>.Shared.Rent(p.ColLength);
            try { Accumulate(0, p.N, dw, col, inner: true); }
            finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
            return dws;
        }
        // Small GEMMs: images split into min(N, Threads) parts, each summing into its own buffer, then the
        // parts are added in order — the result depends on Threads but never on timing.
        int parts = Math.Min(p.N, Threads);
        var partial = new T[parts][];
        partial[0] = dw;
        for (int q = 1; q < parts; q++) partial[q] = new T[wLen];
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = Threads }, q =>
        {
            var col = p.Direct ? null : ArrayPool<T>.Shared.Rent(p.ColLength);
            try { Accumulate(p.N * q / parts, p.N * (q + 1) / parts, partial[q], col, inner: false); }
            finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
        });
        for (int q = 1; q < parts; q++) Im2Col.AddInto<T>(partial[q], dw);
        return dws;
    }
}
