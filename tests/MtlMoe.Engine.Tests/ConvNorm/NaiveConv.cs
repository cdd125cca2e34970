using MtlMoe.Engine.Backends;

namespace MtlMoe.Tests.ConvNorm;

/// <summary>Direct 7-loop convolution in double, the reference the im2col+GEMM path is compared with.</summary>
internal static class NaiveConv
{
    /// <summary>y [N, O, Ho, Wo] from x [N, C, H, W] (row-major values), w [O, C/G, kh, kw], optional bias [O].</summary>
    public static double[] Forward(double[] x, int[] xs, double[] w, int[] ws, double[]? b, Conv2dGeometry g, out int[] ys)
    {
        int n = xs[0], c = xs[1], h = xs[2], wd = xs[3], o = ws[0], cg = ws[1], kh = ws[2], kw = ws[3];
        int og = o / g.Groups;
        int ho = (h + 2 * g.PadH - g.DilationH * (kh - 1) - 1) / g.StrideH + 1;
        int wo = (wd + 2 * g.PadW - g.DilationW * (kw - 1) - 1) / g.StrideW + 1;
        ys = [n, o, ho, wo];
        var y = new double[n * o * ho * wo];
        for (int ni = 0; ni < n; ni++)
            for (int oc = 0; oc < o; oc++)
            {
                int grp = oc / og;
                for (int oh = 0; oh < ho; oh++)
                    for (int ow = 0; ow < wo; ow++)
                    {
                        double s = b is null ? 0 : b[oc];
                        for (int ci = 0; ci < cg; ci++)
                            for (int i = 0; i < kh; i++)
                                for (int j = 0; j < kw; j++)
                                {
                                    int ih = oh * g.StrideH - g.PadH + i * g.DilationH, iw = ow * g.StrideW - g.PadW + j * g.DilationW;
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                                    int cin = grp * cg + ci;
                                    s += x[((ni * c + cin) * h + ih) * wd + iw] * w[((oc * cg + ci) * kh + i) * kw + j];
                                }
                        y[((ni * o + oc) * ho + oh) * wo + ow] = s;
                    }
            }
        return y;
    }

    /// <summary>(dx, dw) of Σ y·dy by scattering every product of the direct convolution.</summary>
    public static (double[] Dx, double[] Dw) Backward(double[] x, int[] xs, double[] w, int[] ws, double[] dy, Conv2dGeometry g)
    {
        int n = xs[0], c = xs[1], h = xs[2], wd = xs[3], o = ws[0], cg = ws[1], kh = ws[2], kw = ws[3];
        int og = o / g.Groups;
        int ho = (h + 2 * g.PadH - g.DilationH * (kh - 1) - 1) / g.StrideH + 1;
        int wo = (wd + 2 * g.PadW - g.DilationW * (kw - 1) - 1) / g.StrideW + 1;
        var dx = new double[x.Length]; var dw = new double[w.Length];
        for (int ni = 0; ni < n; ni++)
            for (int oc = 0; oc < o; oc++)
                for (int oh = 0; oh < ho; oh++)
                    for (int ow = 0; ow < wo; ow++)
                    {
                        double d = dy[((ni * o + oc) * ho + oh) * wo + ow];
                        for (int ci = 0; ci < cg; ci++)
                            for (int i = 0; i < kh; i++)
                                for (int j = 0; j < kw; j++)
                                {
                                    int ih = oh * g.StrideH - g.PadH + i * g.DilationH, iw = ow * g.StrideW - g.PadW + j * g.DilationW;
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                                    int xi = ((ni * c + oc / og * cg + ci) * h + ih) * wd + iw, wi = ((oc * cg + ci) * kh + i) * kw + j;
                                    dx[xi] += d * w[wi];
                                    dw[wi] += d * x[xi];
                                }
                    }
        return (dx, dw);
    }
}
