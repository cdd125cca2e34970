namespace MtlMoe.Engine.Backends;

/// <summary>
/// Geometry of a 2-d convolution (NCHW): stride, zero padding and dilation per spatial dim, and the
/// number of channel groups. The same record describes forward and both backward passes, so a
/// backend can build one descriptor (cuDNN's) from it.
/// </summary>
public sealed record Conv2dGeometry(int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0,
    int DilationH = 1, int DilationW = 1, int Groups = 1)
{
    /// <summary>Square geometry: the same stride, padding and dilation in both dims.</summary>
    public static Conv2dGeometry Square(int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
        => new(stride, stride, padding, padding, dilation, dilation, groups);

    /// <summary>Output height for an input height and kernel height: ⌊(H + 2p − d(k − 1) − 1)/s⌋ + 1.</summary>
    public int OutH(int h, int kh) => (h + 2 * PadH - DilationH * (kh - 1) - 1) / StrideH + 1;

    /// <summary>Output width for an input width and kernel width.</summary>
    public int OutW(int w, int kw) => (w + 2 * PadW - DilationW * (kw - 1) - 1) / StrideW + 1;

    /// <summary>"stride (1, 1) padding (0, 0) dilation (1, 1) groups 1".</summary>
    public override string ToString() => $"stride ({StrideH}, {StrideW}) padding ({PadH}, {PadW}) dilation ({DilationH}, {DilationW}) groups {Groups}";
}

public partial interface IBackend
{
    /// <summary>
    /// y = conv2d(x, w): x [N, C, H, W], w [O, C/groups, kh, kw] → contiguous y [N, O, Ho, Wo]
    /// (cross-correlation, zero padding; no bias — the op adds it). Shapes are validated by the op.
    /// </summary>
    Storage Conv2dForward(StorageView x, StorageView w, Conv2dGeometry geometry);

    /// <summary>dx [N, C, H, W] (= <paramref name="inputShape"/>) from dy [N, O, Ho, Wo] and w [O, C/groups, kh, kw].</summary>
    Storage Conv2dBackwardData(StorageView dy, StorageView w, Conv2dGeometry geometry, int[] inputShape);

    /// <summary>dw [O, C/groups, kh, kw] (= <paramref name="weightShape"/>) from x [N, C, H, W] and dy [N, O, Ho, Wo].</summary>
    Storage Conv2dBackwardWeight(StorageView x, StorageView dy, Conv2dGeometry geometry, int[] weightShape);
}
