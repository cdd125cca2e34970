namespace MtlMoe.Engine.NN;

/// <summary>Max pooling with a square window (stride ≤ 0 = kernel); no parameters.</summary>
public sealed class MaxPool2d(int kernel, int stride = -1, int padding = 0) : Module
{
    /// <summary>Window size.</summary>
    public int Kernel { get; } = kernel;
    /// <summary>Step (≤ 0: the kernel).</summary>
    public int Stride { get; } = stride;
    /// <summary>Implicit −∞ padding.</summary>
    public int Padding { get; } = padding;

    /// <inheritdoc />
    public override Tensor Forward(Tensor x) => Ops.MaxPool2d(x, Kernel, Stride, Padding);
}

/// <summary>Average pooling with a square window (stride ≤ 0 = kernel, count_include_pad); no parameters.</summary>
public sealed class AvgPool2d(int kernel, int stride = -1, int padding = 0) : Module
{
    /// <summary>Window size.</summary>
    public int Kernel { get; } = kernel;
    /// <summary>Step (≤ 0: the kernel).</summary>
    public int Stride { get; } = stride;
    /// <summary>Implicit zero padding.</summary>
    public int Padding { get; } = padding;

    /// <inheritdoc />
    public override Tensor Forward(Tensor x) => Ops.AvgPool2d(x, Kernel, Stride, Padding);
}

/// <summary>Adaptive average pooling to a fixed [outH, outW] (ResNet's global pool is (1, 1)); no parameters.</summary>
public sealed class AdaptiveAvgPool2d(int outH, int outW) : Module
{
    /// <summary>Output height.</summary>
    public int OutH { get; } = outH;
    /// <summary>Output width.</summary>
    public int OutW { get; } = outW;

    /// <summary>Square output.</summary>
    public AdaptiveAvgPool2d(int size) : this(size, size) { }

    /// <inheritdoc />
    public override Tensor Forward(Tensor x) => Ops.AdaptiveAvgPool2d(x, OutH, OutW);
}
