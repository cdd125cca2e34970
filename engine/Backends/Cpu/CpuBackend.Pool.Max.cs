using System.Numerics;
using System.Runtime.CompilerServices;

namespace MtlMoe.Engine.Backends.Cpu;

public sealed partial class CpuBackend
{
    private (Storage, Storage) MaxPoolT<T>(Storage xs, Layout lx, Pool2dGeometry g) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (x, xo) = NchwDense.Of<T>(Options, xs, lx); // x: [N, C, H, W]
        int planes = lx.Shape[0] * lx.Shape[1], h = lx.Shape[2], w = lx.Shape[3], ho = g.OutH(h), wo = g.OutW(w);
        var ys = NewStorage(xs.DType, planes * ho * wo);
        var ixs = NewStorage(DType.Int64, planes * ho * wo);
        var y = ys.Array<T>();                 // y: [N, C, Ho, Wo]
        var ix = ixs.Array<long>();            // indices: [N, C, Ho, Wo], flat h·W + w in the plane
        if (ys.Length == 0) return (ys, ixs);
        if (typeof(T) == typeof(float) && MaxPoolVec.Applies(Options, g))
            StridedIter.ParallelChunks(Options, planes, (long)ho * wo * g.KernelH * g.KernelW,
                (lo, hi) => MaxPoolVec.Planes((float[])(object)x, xo, (float[])(object)y, ix, (int)lo, (int)hi, h, w, ho, wo, g));
        else
            StridedIter.ParallelChunks(Options, planes, (long)ho * wo * g.KernelH * g.KernelW,
                (lo, hi) => MaxPoolPlanes(x, xo, y, ix, (int)lo, (int)hi, h, w, ho, wo, g));
        return (ys, ixs);
    }

    // Planes [lo, hi): the first maximum of each window in row-major order (a NaN wins over numbers), through
    // pointers. Fully optimised from the first call: it runs a few times per step with long loops.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe void MaxPoolPlanes<T>(T[] x, int xo, T[] y, long[] ix, int lo, int hi, int h, int w, int ho, int wo, Pool2dGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int kh = g.KernelH, kw = g.KernelW, sh = g.StrideH, sw = g.StrideW, ph = g.PadH, pw = g.PadW;
        fixed (T* px = x, py = y)
        fixed (long* pix = ix)
        {
            for (int pl = lo; pl < hi; pl++)
            {
                T* src = px + xo + (long)pl * h * w;
                T* dst = py + (long)pl * ho * wo;
                long* dix = pix + (long)pl * ho * wo;
                for (int oh = 0; oh < ho; oh++)
                {
                    int h0 = Math.Max(oh * sh - ph, 0), h1 = Math.Min(oh * sh - ph + kh, h);
                    for (int ow = 0; ow < wo; ow++)
                    {
                        int w0 = Math.Max(ow * sw - pw, 0), w1 = Math.Min(ow * sw - pw + kw, w);
                        T best = T.NegativeInfinity;
                        int at = h0 * w + w0;
                        for (int ih = h0; ih < h1; ih++)
                        {
                            T* row = src + ih * w;
                            for (int iw = w0; iw < w1; iw++)
                            {
                                T v = row[iw];
                                // v > best, or v is the first NaN (a NaN best is never replaced).
                                if (v > best || (T.IsNaN(v) && !T.IsNaN(best))) { best = v; at = ih * w + iw; }
                            }
                        }
                        dst[oh * wo + ow] = best;
                        dix[oh * wo + ow] = at;
                    }
                }
            }
        }
    }
}
