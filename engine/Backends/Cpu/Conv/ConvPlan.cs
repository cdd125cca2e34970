namespace MtlMoe.Engine.Backends.Cpu.Conv;

/// <summary>
/// One conv2d call as the algorithm table sees it: the sizes, derived once from x [N, C, H, W], w [O, C/G, kh, kw] and
/// the geometry, the element type, and the options of the backend that runs it (which algorithms it may take and the
/// thresholds they decide by). The same plan describes the forward and both backward passes.
/// </summary>
internal readonly struct ConvPlan
{
    public readonly int N, C, H, W, O, G, Cg, Og, Kh, Kw, Ho, Wo;
    public readonly Conv2dGeometry Geo;
    /// <summary>Element type of every operand.</summary>
    public readonly DType DType;
    /// <summary>Options of the backend running the call.</summary>
    public readonly CpuBackendOptions Options;

    public ConvPlan(int[] xShape, int[] wShape, Conv2dGeometry g, DType dtype, CpuBackendOptions options)
    {
        N = xShape[0]; C = xShape[1]; H = xShape[2]; W = xShape[3];
        O = wShape[0]; Cg = wShape[1]; Kh = wShape[2]; Kw = wShape[3];
        G = g.Groups; Og = O / G; Geo = g;
        Ho = g.OutH(H, Kh); Wo = g.OutW(W, Kw);
        DType = dtype; Options = options;
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
    /// <summary>Whether the options allow every path in <paramref name="path"/>.</summary>
    public bool On(CpuPath path) => Options.On(path);
    /// <summary>The same problem under other options.</summary>
    public ConvPlan WithOptions(CpuBackendOptions options) => new([N, C, H, W], [O, Cg, Kh, Kw], Geo, DType, options);
    /// <summary>"[16, 64, 28, 28] * [128, 64, 3, 3] stride (2, 2) …": for messages.</summary>
    public override string ToString() => $"{Shapes.Format([N, C, H, W])} * {Shapes.Format([O, Cg, Kh, Kw])} {Geo} {DType.Name()}";
}
