using MtlMoe.Engine.Backends;

namespace MtlMoe.Engine.NN;

/// <summary>2-d convolution layer: x [N, Cin, H, W] → [N, Cout, Ho, Wo]; weight [Cout, Cin/groups, k, k], bias [Cout].</summary>
public sealed class Conv2d : Module
{
    /// <summary>[Cout, Cin/groups, k, k]</summary>
    public Tensor Weight { get; }
    /// <summary>[Cout] or null.</summary>
    public Tensor? Bias { get; }
    /// <summary>Stride, padding, dilation and groups.</summary>
    public Conv2dGeometry Geometry { get; }

    /// <summary>A layer initialised like PyTorch's (weight and bias U(±1/√fan_in), fan_in = Cin/groups·k²).</summary>
    public Conv2d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true, Rng? rng = null, DType dtype = DType.Float32)
    {
        if (inChannels <= 0 || outChannels <= 0 || kernel <= 0)
            throw new ArgumentException($"conv2d: channels and kernel must be positive, got in={inChannels} out={outChannels} kernel={kernel}");
        if (groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"conv2d: groups {groups} must divide in={inChannels} and out={outChannels}");
        rng ??= Rng.Default;
        Geometry = Conv2dGeometry.Square(stride, padding, dilation, groups);
        int fanIn = inChannels / groups * kernel * kernel;
        Weight = RegisterParameter("weight", Init.DefaultLayer(DisposeScope.Outside(() => Tensor.Zeros([outChannels, inChannels / groups, kernel, kernel], dtype)), fanIn, rng));
        if (bias) Bias = RegisterParameter("bias", Init.DefaultLayer(DisposeScope.Outside(() => Tensor.Zeros([outChannels], dtype)), fanIn, rng));
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor x) => Ops.Conv2d(x, Weight, Bias, Geometry);
}
