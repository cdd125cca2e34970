namespace MtlMoe.Engine.Backends;

/// <summary>Window of a 2-d pooling (NCHW): kernel, stride and implicit padding per spatial dim (floor mode).</summary>
public sealed record Pool2dGeometry(int KernelH, int KernelW, int StrideH, int StrideW, int PadH = 0, int PadW = 0)
{
    /// <summary>Square window; stride ≤ 0 means stride = kernel (PyTorch's default).</summary>
    public static Pool2dGeometry Square(int kernel, int stride = -1, int padding = 0)
        => new(kernel, kernel, stride > 0 ? stride : kernel, stride > 0 ? stride : kernel, padding, padding);

    /// <summary>Output height: ⌊(H + 2p − k)/s⌋ + 1.</summary>
    public int OutH(int h) => (h + 2 * PadH - KernelH) / StrideH + 1;

    /// <summary>Output width: ⌊(W + 2p − k)/s⌋ + 1.</summary>
    public int OutW(int w) => (w + 2 * PadW - KernelW) / StrideW + 1;

    /// <summary>"kernel (2, 2) stride (2, 2) padding (0, 0)".</summary>
    public override string ToString() => $"kernel ({KernelH}, {KernelW}) stride ({StrideH}, {StrideW}) padding ({PadH}, {PadW})";
}

public partial interface IBackend
{
    /// <summary>
    /// Max pooling of x [N, C, H, W] → (y [N, C, Ho, Wo], indices [N, C, Ho, Wo] Int64). Padding counts as −∞;
    /// an index is the flat position h·W + w of the maximum inside its (n, c) plane (PyTorch's convention),
    /// the first one on ties; NaN wins.
    /// </summary>
    (Storage Values, Storage Indices) MaxPool2dForward(StorageView x, Pool2dGeometry geometry);

    /// <summary>dx [N, C, H, W] (= <paramref name="inputShape"/>): each dy element added at its saved index.</summary>
    Storage MaxPool2dBackward(StorageView dy, StorageView indices, int[] inputShape);

    /// <summary>Average pooling of x [N, C, H, W]; padding counts as zeros and in the divisor (count_include_pad).</summary>
    Storage AvgPool2dForward(StorageView x, Pool2dGeometry geometry);

    /// <summary>dx [N, C, H, W] (= <paramref name="inputShape"/>) of average pooling.</summary>
    Storage AvgPool2dBackward(StorageView dy, Pool2dGeometry geometry, int[] inputShape);

    /// <summary>
    /// Adaptive average pooling of x [N, C, H, W] to [N, C, outH, outW]; bin i covers
    /// [⌊i·H/outH⌋, ⌈(i+1)·H/outH⌉) (likewise for width).
    /// </summary>
    Storage AdaptiveAvgPool2dForward(StorageView x, int outH, int outW);

    /// <summary>dx [N, C, H, W] (= <paramref name="inputShape"/>) of adaptive average pooling from dy [N, C, outH, outW].</summary>
    Storage AdaptiveAvgPool2dBackward(StorageView dy, int[] inputShape);
}
