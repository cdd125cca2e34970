using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// Unfolds one image-group's input [Cg, H, W] into the column matrix [Cg·kh·kw, Ho·Wo] a conv GEMM
/// reads (zeros where the window hangs over the padding), and folds it back additively (col2im).
/// </summary>
internal static class Im2Col
{
    // Range [lo, hi) of output columns whose input column ow·s + off lies inside [0, size).
    private static (int Lo, int Hi) Valid(int off, int s, int size, int outSize)
    {
        int lo = off >= 0 ? 0 : (-off + s - 1) / s;
        int hi = size - 1 - off < 0 ? 0 : Math.Min(outSize, (size - 1 - off) / s + 1);
        lo = Math.Min(lo, outSize);
        return (lo, Math.Max(lo, hi));
    }

    /// <summary>col [K, Ho·Wo] ← unfold(x[xOff .. xOff + Cg·H·W)), rows [rowLo, rowHi) of col only (all when rowHi &lt; 0).</summary>
    public static void Unfold<T>(T[] x, int xOff, in ConvPlan p, Span<T> col, int rowLo = 0, int rowHi = -1) where T : unmanaged, INumber<T>
    {
        var g = p.Geo;
        int ho = p.Ho, wo = p.Wo, sh = g.StrideH, sw = g.StrideW;
        if (rowHi < 0) rowHi = p.K;
        for (int r = rowLo; r < rowHi; r++)
        {
            int c = r / (p.Kh * p.Kw), i = r / p.Kw % p.Kh, j = r % p.Kw;
            var dst = col.Slice(r * p.OutPlane, p.OutPlane);
            int hOff = i * g.DilationH - g.PadH, wOff = j * g.DilationW - g.PadW;
            var (lo, hi) = Valid(wOff, sw, p.W, wo);
            for (int oh = 0; oh < ho; oh++)
            {
                var row = dst.Slice(oh * wo, wo);
                int ih = oh * sh + hOff;
                if ((uint)ih >= (uint)p.H) { row.Clear(); continue; }
                row[..lo].Clear();
                row[hi..].Clear();
                int src = xOff + c * p.InPlane + ih * p.W + wOff;
                if (sw == 1) x.AsSpan(src + lo, hi - lo).CopyTo(row[lo..hi]);
                else for (int ow = lo; ow < hi; ow++) row[ow] = x[src + ow * sw];
            }
        }
    }

    /// <summary>
    /// dx[dxOff .. dxOff + Cg·H·W) += fold(col [K, Ho·Wo]) in a fixed order, channels [cLo, cHi) only (all when cHi &lt; 0);
    /// different channels touch disjoint parts of dx.
    /// </summary>
    public static void Fold<T>(ReadOnlySpan<T> col, in ConvPlan p, T[] dx, int dxOff, int cLo = 0, int cHi = -1) where T : unmanaged, INumber<T>
    {
        var g = p.Geo;
        int ho = p.Ho, wo = p.Wo, sh = g.StrideH, sw = g.StrideW;
        if (cHi < 0) cHi = p.Cg;
        for (int c = cLo; c < cHi; c++)
            for (int i = 0; i < p.Kh; i++)
                for (int j = 0; j < p.Kw; j++)
                {
                    var src = col.Slice(((c * p.Kh + i) * p.Kw + j) * p.OutPlane, p.OutPlane);
                    int hOff = i * g.DilationH - g.PadH, wOff = j * g.DilationW - g.PadW;
                    var (lo, hi) = Valid(wOff, sw, p.W, wo);
                    for (int oh = 0; oh < ho; oh++)
                    {
                        int ih = oh * sh + hOff;
                        if ((uint)ih >= (uint)p.H) continue;
                        var row = src.Slice(oh * wo, wo);
                        int d = dxOff + c * p.InPlane + ih * p.W + wOff;
                        if (sw == 1) AddInto(row[lo..hi], dx.AsSpan(d + lo, hi - lo));
                        else for (int ow = lo; ow < hi; ow++) dx[d + ow * sw] += row[ow];
                    }
                }
    }

    /// <summary>dst += src, vectorised.</summary>
    public static void AddInto<T>(ReadOnlySpan<T> src, Span<T> dst) where T : unmanaged, INumber<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
            for (; i <= src.Length - Vector<T>.Count; i += Vector<T>.Count)
                (new Vector<T>(dst[i..]) + new Vector<T>(src[i..])).CopyTo(dst[i..]);
        for (; i < src.Length; i++) dst[i] += src[i];
    }
}
