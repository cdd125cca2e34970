namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>Sizes of one conv2d call, derived once from x [N, C, H, W], w [O, C/G, kh, kw] and the geometry.</summary>
internal readonly struct ConvPlan
{
    public readonly int N, C, H, W, O, G, Cg, Og, Kh, Kw, Ho, Wo;
    public readonly Conv2dGeometry Geo;

    public ConvPlan(int[] xShape, int[] wShape, Conv2dGeometry g)
    {
        N = xShape[0]; C = xShape[1]; H = xShape[2]; W = xShape[3];
        O = wShape[0]; Cg = wShape[1]; Kh = wShape[2]; Kw = wShape[3];
        G = g.Groups; Og = O / G; Geo = g;
        Ho = g.OutH(H, Kh); Wo = g.OutW(W, Kw);
    }

    /// <summary>Rows of the column matrix (and columns of a weight group): Cg·kh·kw.</summary>
    public int K => Cg * Kh * Kw;
    /// <summary>Ho·Wo.</summary>
    public int OutPlane => Ho * Wo;
    /// <summary>H·W.</summary>
    public int InPlane => H * W;
    /// <summary>Elements of one image-group's column matrix [K, Ho·Wo].</summary>
    public int ColLength => K * OutPlane;
    /// <summary>Multiply-adds per image (all groups).</summary>
    public long MacsPerImage => (long)O * K * OutPlane;
    /// <summary>A 1×1, stride-1, unpadded conv reads the input plane as its column matrix directly.</summary>
    public bool Direct => Kh == 1 && Kw == 1 && Geo.StrideH == 1 && Geo.StrideW == 1 && Geo.PadH == 0 && Geo.PadW == 0;
}
