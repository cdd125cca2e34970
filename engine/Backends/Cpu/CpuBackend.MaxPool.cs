using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

public sealed partial class CpuBackend
{
    private static (Storage, Storage) MaxPoolT<T>(Storage xs, Layout lx, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (x, xo) = NchwDense.Of<T>(xs, lx); // x: [N, C, H, W]
        int planes = lx.Shape[0] * lx.Shape[1], h = lx.Shape[2], w = lx.Shape[3], ho = g.OutH(h), wo = g.OutW(w);
        var ys = NewStorage(xs.DType, planes * ho * wo);
        var ixs = NewStorage(DType.Int64, planes * ho * wo);
        var y = ys.Array<T>();                 // y: [N, C, Ho, Wo]
        var ix = ixs.Array<long>();            // indices: [N, C, Ho, Wo], flat h·W + w in the plane
        StridedIter.ParallelChunks(planes, (long)ho * wo * g.KernelH * g.KernelW, (lo, hi) =>
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
                        T best = T.NegativeInfinity;
                        int at = h0 * w + w0;
                        for (int ih = h0; ih < h1; ih++)
                            for (int iw = w0; iw < w1; iw++)
                            {
                                T v = x[src + ih * w + iw];
                                if (v > best || (T.IsNaN(v) && !T.IsNaN(best))) { best = v; at = ih * w + iw; }
                            }
                        y[dst + oh * wo + ow] = best;
                        ix[dst + oh * wo + ow] = at;
                    }
                }
            }
        });
        return (ys, ixs);
    }
}
