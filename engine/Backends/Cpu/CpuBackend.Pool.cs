using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

// 2-d pooling over NCHW planes, parallel over (n, c) planes; each plane is written by one thread.
public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public (Storage Values, Storage Indices) MaxPool2dForward(StorageView xView, Pool2dGeometry geometry)
    {
        var (x, lx) = xView;
        return x.DType switch
        {
            DType.Float32 => MaxPoolT<float>(x, lx, geometry),
            DType.Float64 => MaxPoolT<double>(x, lx, geometry),
            DType.BFloat16 => MaxPool2dForwardBf16(xView, geometry),
            _ => throw new NotSupportedException($"max_pool2d: float tensors only, got {x.DType.Name()}"),
        };
    }

    /// <inheritdoc />
    public Storage MaxPool2dBackward(StorageView dyView, StorageView indicesView, int[] inputShape)
    {
        var (dy, ldy) = dyView;
        var (indices, lindices) = indicesView;
        return dy.DType switch
        {
            DType.Float32 => MaxPoolBackT<float>(dy, ldy, indices, lindices, inputShape),
            DType.Float64 => MaxPoolBackT<double>(dy, ldy, indices, lindices, inputShape),
            DType.BFloat16 => MaxPool2dBackwardBf16(dyView, indicesView, inputShape),
            _ => throw new NotSupportedException($"max_pool2d backward: float tensors only, got {dy.DType.Name()}"),
        };
    }

    /// <inheritdoc />
    public Storage AvgPool2dForward(StorageView xView, Pool2dGeometry geometry)
    {
        var (x, lx) = xView;
        return x.DType switch
        {
            DType.Float32 => AvgPoolT<float>(x, lx, geometry),
            DType.Float64 => AvgPoolT<double>(x, lx, geometry),
            DType.BFloat16 => AvgPool2dForwardBf16(xView, geometry),
            _ => throw new NotSupportedException($"avg_pool2d: float tensors only, got {x.DType.Name()}"),
        };
    }

    /// <inheritdoc />
    public Storage AvgPool2dBackward(StorageView dyView, Pool2dGeometry geometry, int[] inputShape)
    {
        var (dy, ldy) = dyView;
        return dy.DType switch
        {
            DType.Float32 => AvgPoolBackT<float>(dy, ldy, geometry, inputShape),
            DType.Float64 => AvgPoolBackT<double>(dy, ldy, geometry, inputShape),
            DType.BFloat16 => AvgPool2dBackwardBf16(dyView, geometry, inputShape),
            _ => throw new NotSupportedException($"avg_pool2d backward: float tensors only, got {dy.DType.Name()}"),
        };
    }

    /// <inheritdoc />
    public Storage AdaptiveAvgPool2dForward(StorageView xView, int outH, int outW)
    {
        var (x, lx) = xView;
        return x.DType switch
        {
            DType.Float32 => AdaptiveT<float>(x, lx, outH, outW),
            DType.Float64 => AdaptiveT<double>(x, lx, outH, outW),
            DType.BFloat16 => AdaptiveAvgPool2dForwardBf16(xView, outH, outW),
            _ => throw new NotSupportedException($"adaptive_avg_pool2d: float tensors only, got {x.DType.Name()}"),
        };
    }

    /// <inheritdoc />
    public Storage AdaptiveAvgPool2dBackward(StorageView dyView, int[] inputShape)
    {
        var (dy, ldy) = dyView;
        return dy.DType switch
        {
            DType.Float32 => AdaptiveBackT<float>(dy, ldy, inputShape),
            DType.Float64 => AdaptiveBackT<double>(dy, ldy, inputShape),
            DType.BFloat16 => AdaptiveAvgPool2dBackwardBf16(dyView, inputShape),
            _ => throw new NotSupportedException($"adaptive_avg_pool2d backward: float tensors only, got {dy.DType.Name()}"),
        };
    }

    private Storage MaxPoolBackT<T>(Storage dys, Layout ldy, Storage ixs, Layout lix, int[] inShape) where T : unmanaged, INumber<T>
    {
        var (dy, dyo) = NchwDense.Of<T>(Options, dys, ldy);    // dy: [N, C, Ho, Wo]
        var (ix, ixo) = NchwDense.Of<long>(Options, ixs, lix); // indices: [N, C, Ho, Wo]
        int planes = inShape[0] * inShape[1], inPlane = inShape[2] * inShape[3], outPlane = ldy.Shape[2] * ldy.Shape[3];
        var dxs = NewStorage(dys.DType, planes * inPlane, zero: true);
        var dx = dxs.Array<T>();                      // dx: [N, C, H, W]
        StridedIter.ParallelChunks(Options, planes, outPlane, (lo, hi) =>
        {
            for (long pl = lo; pl < hi; pl++)
            {
                int d = (int)pl * inPlane, s = (int)pl * outPlane;
                for (int o = 0; o < outPlane; o++) dx[d + (int)ix[ixo + s + o]] += dy[dyo + s + o];
            }
        });
        return dxs;
    }

    private Storage AvgPoolT<T>(Storage xs, Layout lx, Pool2dGeometry g) where T : unmanaged, INumber<T>
    {
        var (x, xo) = NchwDense.Of<T>(Options, xs, lx); // x: [N, C, H, W]
        int planes = lx.Shape[0] * lx.Shape[1], h = lx.Shape[2], w = lx.Shape[3], ho = g.OutH(h), wo = g.OutW(w);
        var ys = NewStorage(xs.DType, planes * ho * wo);
        var y = ys.Array<T>();                 // y: [N, C, Ho, Wo]
        // count_include_pad with floor mode: every window lies inside the padded input, so the divisor is kh·kw.
        T inv = T.One / T.CreateChecked(g.KernelH * g.KernelW);
        StridedIter.ParallelChunks(Options, planes, (long)ho * wo * g.KernelH * g.KernelW, (lo, hi) =>
        {
            for (long pl = lo; pl < hi; pl++)
            {
                int src = xo + (int)pl * h * w, dst = (int)pl * ho * wo;
                for (int oh = 0; oh < ho; oh++)
                {
                    int h0 = Math.Max(oh * g.StrideH - g.PadH, 0), h1 = Math.Min(oh * g.StrideH - g.PadH + g.KernelH, h);
                    for (int ow = 0; ow < wo; ow++)
                    {
                        int w0 = Math.Max(ow * g.StrideW - g.PadW, 0), w1 = Math.Min(ow * g.StrideW - g.PadW + g.KernelW, w);
                        T s = T.Zero;
                        for (int ih = h0; ih < h1; ih++)
                            for (int iw = w0; iw < w1; iw++) s += x[src + ih * w + iw];
                        y[dst + oh * wo + ow] = s * inv;
                    }
                }
            }
        });
        return ys;
    }

    private Storage AvgPoolBackT<T>(Storage dys, Layout ldy, Pool2dGeometry g, int[] inShape) where T : unmanaged, INumber<T>
    {
        var (dy, dyo) = NchwDense.Of<T>(Options, dys, ldy); // dy: [N, C, Ho, Wo]
        int planes = inShape[0] * inShape[1], h = inShape[2], w = inShape[3], ho = ldy.Shape[2], wo = ldy.Shape[3];
        var dxs = NewStorage(dys.DType, planes * h * w, zero: true);
        var dx = dxs.Array<T>();                   // dx: [N, C, H, W]
        T inv = T.One / T.CreateChecked(g.KernelH * g.KernelW);
        StridedIter.ParallelChunks(Options, planes, (long)ho * wo * g.KernelH * g.KernelW, (lo, hi) =>
        {
            for (long pl = lo; pl < hi; pl++)
            {
                int dst = (int)pl * h * w, src = dyo + (int)pl * ho * wo;
                for (int oh = 0; oh < ho; oh++)
                {
                    int h0 = Math.Max(oh * g.StrideH - g.PadH, 0), h1 = Math.Min(oh * g.StrideH - g.PadH + g.KernelH, h);
                    for (int ow = 0; ow < wo; ow++)
                    {
                        int w0 = Math.Max(ow * g.StrideW - g.PadW, 0), w1 = Math.Min(ow * g.StrideW - g.PadW + g.KernelW, w);
                        T v = dy[src + oh * wo + ow] * inv;
                        for (int ih = h0; ih < h1; ih++)
                            for (int iw = w0; iw < w1; iw++) dx[dst + ih * w + iw] += v;
                    }
                }
            }
        });
        return dxs;
    }

    // PyTorch's adaptive bins: [⌊i·size/out⌋, ⌈(i+1)·size/out⌉).
    private static int BinStart(int i, int size, int outSize) => (int)((long)i * size / outSize);
    private static int BinEnd(int i, int size, int outSize) => (int)(((long)(i + 1) * size + outSize - 1) / outSize);

    private Storage AdaptiveT<T>(Storage xs, Layout lx, int ho, int wo) where T : unmanaged, INumber<T>
    {
        var (x, xo) = NchwDense.Of<T>(Options, xs, lx); // x: [N, C, H, W]
        int planes = lx.Shape[0] * lx.Shape[1], h = lx.Shape[2], w = lx.Shape[3];
        var ys = NewStorage(xs.DType, planes * ho * wo);
        var y = ys.Array<T>();                 // y: [N, C, outH, outW]
        StridedIter.ParallelChunks(Options, planes, (long)h * w, (lo, hi) =>
        {
            for (long pl = lo; pl < hi; pl++)
            {
                int src = xo + (int)pl * h * w, dst = (int)pl * ho * wo;
                for (int oh = 0; oh < ho; oh++)
                {
                    int h0 = BinStart(oh, h, ho), h1 = BinEnd(oh, h, ho);
                    for (int ow = 0; ow < wo; ow++)
                    {
                        int w0 = BinStart(ow, w, wo), w1 = BinEnd(ow, w, wo);
                        T s = T.Zero;
                        for (int ih = h0; ih < h1; ih++)
                            for (int iw = w0; iw < w1; iw++) s += x[src + ih * w + iw];
                        y[dst + oh * wo + ow] = s / T.CreateChecked((h1 - h0) * (w1 - w0));
                    }
                }
            }
        });
        return ys;
    }

    private Storage AdaptiveBackT<T>(Storage dys, Layout ldy, int[] inShape) where T : unmanaged, INumber<T>
    {
        var (dy, dyo) = NchwDense.Of<T>(Options, dys, ldy); // dy: [N, C, outH, outW]
        int planes = inShape[0] * inShape[1], h = inShape[2], w = inShape[3], ho = ldy.Shape[2], wo = ldy.Shape[3];
        var dxs = NewStorage(dys.DType, planes * h * w, zero: true);
        var dx = dxs.Array<T>();                   // dx: [N, C, H, W]
        StridedIter.ParallelChunks(Options, planes, (long)h * w, (lo, hi) =>
        {
            for (long pl = lo; pl < hi; pl++)
            {
                int dst = (int)pl * h * w, src = dyo + (int)pl * ho * wo;
                for (int oh = 0; oh < ho; oh++)
                {
                    int h0 = BinStart(oh, h, ho), h1 = BinEnd(oh, h, ho);
                    for (int ow = 0; ow < wo; ow++)
                    {
                        int w0 = BinStart(ow, w, wo), w1 = BinEnd(ow, w, wo);
                        T v = dy[src + oh * wo + ow] / T.CreateChecked((h1 - h0) * (w1 - w0));
                        for (int ih = h0; ih < h1; ih++)
                            for (int iw = w0; iw < w1; iw++) dx[dst + ih * w + iw] += v;
                    }
                }
            }
        });
        return dxs;
    }
}
