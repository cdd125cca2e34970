using System.Buffers;
using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

// Conv2d as im2col + GEMM per image and group, parallel over images. Every output element is
// produced by one thread in a fixed order, so results do not depend on timing.
public sealed partial class CpuBackend
{
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

    private static Storage ConvForwardT<T>(Storage xs, Layout lx, Storage ws, Layout lw, ConvPlan p) where T : unmanaged, INumber<T>
    {
        var (x, xo) = NchwDense.Of<T>(xs, lx); // x: [N, C, H, W]
        var (w, wo) = NchwDense.Of<T>(ws, lw); // w: [O, Cg, kh, kw] = G × [Og, K]
        var ys = NewStorage(xs.DType, p.N * p.O * p.OutPlane);
        var y = ys.Array<T>();                 // y: [N, O, Ho, Wo] = N × G × [Og, Ho·Wo]
        if (p.OutPlane == 0) return ys;
        StridedIter.ParallelChunks(p.N, p.MacsPerImage, (lo, hi) =>
        {
            var col = p.Direct ? null : ArrayPool<T>.Shared.Rent(p.ColLength); // col: [K, Ho·Wo]
            try
            {
                for (int n = (int)lo; n < hi; n++)
                    for (int g = 0; g < p.G; g++)
                    {
                        int xOff = xo + (n * p.C + g * p.Cg) * p.InPlane;
                        if (col is not null) Im2Col.Unfold(x, xOff, p, col.AsSpan(0, p.ColLength));
                        ReadOnlySpan<T> b = col is null ? x.AsSpan(xOff, p.ColLength) : col.AsSpan(0, p.ColLength);
                        CpuGemm.Gemm(false, false, p.Og, p.OutPlane, p.K, T.One,
                            w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K), p.K, b, p.OutPlane,
                            T.Zero, y.AsSpan((n * p.O + g * p.Og) * p.OutPlane, p.Og * p.OutPlane), p.OutPlane);
                    }
            }
            finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
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
        StridedIter.ParallelChunks(p.N, p.MacsPerImage, (lo, hi) =>
        {
            var col = p.Direct ? null : ArrayPool<T>.Shared.Rent(p.ColLength); // dcol: [K, Ho·Wo]
            try
            {
                for (int n = (int)lo; n < hi; n++)
                    for (int g = 0; g < p.G; g++)
                    {
                        int dxOff = (n * p.C + g * p.Cg) * p.InPlane;
                        // dcol = W_gᵀ · dy[n, g]: [K, Og] · [Og, Ho·Wo]
                        var c = col is null ? dx.AsSpan(dxOff, p.ColLength) : col.AsSpan(0, p.ColLength);
                        CpuGemm.Gemm(true, false, p.K, p.OutPlane, p.Og, T.One,
                            w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K), p.K,
                            dy.AsSpan(dyo + (n * p.O + g * p.Og) * p.OutPlane, p.Og * p.OutPlane), p.OutPlane,
                            T.Zero, c, p.OutPlane);
                        if (col is not null) Im2Col.Fold<T>(col.AsSpan(0, p.ColLength), p, dx, dxOff);
                    }
            }
            finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
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
        // Images are split into a fixed number of parts, each summing into its own buffer; the parts are
        // then added in order, so the result depends on Threads but never on timing.
        long work = p.N * p.MacsPerImage;
        int parts = work < 1 << 16 ? 1 : Math.Min(p.N, Threads);
        var partial = new T[parts][];
        partial[0] = dw;
        for (int q = 1; q < parts; q++) partial[q] = new T[wLen];
        void Part(int q)
        {
            int lo = p.N * q / parts, hi = p.N * (q + 1) / parts;
            var acc = partial[q];
            var col = p.Direct ? null : ArrayPool<T>.Shared.Rent(p.ColLength); // col: [K, Ho·Wo]
            try
            {
                for (int n = lo; n < hi; n++)
                    for (int g = 0; g < p.G; g++)
                    {
                        int xOff = xo + (n * p.C + g * p.Cg) * p.InPlane;
                        if (col is not null) Im2Col.Unfold(x, xOff, p, col.AsSpan(0, p.ColLength));
                        ReadOnlySpan<T> b = col is null ? x.AsSpan(xOff, p.ColLength) : col.AsSpan(0, p.ColLength);
                        // dW_g += dy[n, g] · colᵀ: [Og, Ho·Wo] · [Ho·Wo, K]
                        CpuGemm.Gemm(false, true, p.Og, p.K, p.OutPlane, T.One,
                            dy.AsSpan(dyo + (n * p.O + g * p.Og) * p.OutPlane, p.Og * p.OutPlane), p.OutPlane,
                            b, p.OutPlane, T.One, acc.AsSpan(g * p.Og * p.K, p.Og * p.K), p.K);
                    }
            }
            finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
        }
        if (parts == 1) Part(0);
        else Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = Threads }, Part);
        for (int q = 1; q < parts; q++) Im2Col.AddInto<T>(partial[q], dw);
        return dws;
    }
}
