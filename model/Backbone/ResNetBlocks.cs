using MtlMoe.Engine;
using MtlMoe.Engine.NN;

namespace MtlMoe.Model.Backbone;

/// <summary>ResNet-18/34 block: two 3×3 convs with a shortcut; torchvision's member names.</summary>
public sealed class BasicBlock : Module
{
    /// <summary>Output channels per input "plane".</summary>
    public const int Expansion = 1;

    // relu(bn(c) + shortcut): the tail of both block kinds, as one fused op (the CPU backend's "bn-add-relu-fused" path
    // can be switched off in its options for an A/B).
    internal static Tensor Tail(BatchNorm2d bn, Tensor c, Tensor shortcut) => bn.ForwardAddRelu(c, shortcut);

    private readonly Conv2d _conv1, _conv2;
    private readonly BatchNorm2d _bn1, _bn2;
    private readonly Sequential? _downsample;

    /// <summary>x: [N, inPlanes, H, W] → [N, planes, H/stride, W/stride].</summary>
    public BasicBlock(int inPlanes, int planes, int stride, Rng rng)
    {
        _conv1 = RegisterModule("conv1", new Conv2d(inPlanes, planes, 3, stride, 1, bias: false, rng: rng));
        _bn1 = RegisterModule("bn1", new BatchNorm2d(planes));
        _conv2 = RegisterModule("conv2", new Conv2d(planes, planes, 3, 1, 1, bias: false, rng: rng));
        _bn2 = RegisterModule("bn2", new BatchNorm2d(planes));
        if (stride != 1 || inPlanes != planes)
            _downsample = RegisterModule("downsample", new Sequential(
                new Conv2d(inPlanes, planes, 1, stride, 0, bias: false, rng: rng), new BatchNorm2d(planes)));
    }

    /// <summary>The last batch-norm of the residual branch (zero-initialised on request).</summary>
    public BatchNorm2d LastNorm => _bn2;

    /// <inheritdoc />
    public override Tensor Forward(Tensor x)
    {
        using var c1 = _conv1.Forward(x);
        using var r1 = _bn1.ForwardRelu(c1);
        using var c2 = _conv2.Forward(r1);
        using var shortcut = _downsample?.Forward(x);
        return Tail(_bn2, c2, shortcut ?? x);
    }
}

/// <summary>ResNet-50 block: 1×1 reduce, 3×3 (carrying the stride, as torchvision v1.5 does), 1×1 expand ×4.</summary>
public sealed class Bottleneck : Module
{
    /// <summary>Output channels per input "plane".</summary>
    public const int Expansion = 4;

    private readonly Conv2d _conv1, _conv2, _conv3;
    private readonly BatchNorm2d _bn1, _bn2, _bn3;
    private readonly Sequential? _downsample;

    /// <summary>x: [N, inPlanes, H, W] → [N, planes·4, H/stride, W/stride].</summary>
    public Bottleneck(int inPlanes, int planes, int stride, Rng rng)
    {
        int outPlanes = planes * Expansion;
        _conv1 = RegisterModule("conv1", new Conv2d(inPlanes, planes, 1, bias: false, rng: rng));
        _bn1 = RegisterModule("bn1", new BatchNorm2d(planes));
        _conv2 = RegisterModule("conv2", new Conv2d(planes, planes, 3, stride, 1, bias: false, rng: rng));
        _bn2 = RegisterModule("bn2", new BatchNorm2d(planes));
        _conv3 = RegisterModule("conv3", new Conv2d(planes, outPlanes, 1, bias: false, rng: rng));
        _bn3 = RegisterModule("bn3", new BatchNorm2d(outPlanes));
        if (stride != 1 || inPlanes != outPlanes)
            _downsample = RegisterModule("downsample", new Sequential(
                new Conv2d(inPlanes, outPlanes, 1, stride, 0, bias: false, rng: rng), new BatchNorm2d(outPlanes)));
    }

    /// <summary>The last batch-norm of the residual branch.</summary>
    public BatchNorm2d LastNorm => _bn3;

    /// <inheritdoc />
    public override Tensor Forward(Tensor x)
    {
        using var c1 = _conv1.Forward(x);
        using var r1 = _bn1.ForwardRelu(c1);
        using var c2 = _conv2.Forward(r1);
        using var r2 = _bn2.ForwardRelu(c2);
        using var c3 = _conv3.Forward(r2);
        using var shortcut = _downsample?.Forward(x);
        return BasicBlock.Tail(_bn3, c3, shortcut ?? x);
    }
}
