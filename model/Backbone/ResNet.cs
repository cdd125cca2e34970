using MtlMoe.Engine;
using MtlMoe.Engine.NN;

namespace MtlMoe.Model.Backbone;

/// <summary>ResNet depth: which block and how many per stage.</summary>
public enum ResNetDepth
{
    /// <summary>BasicBlock × [2, 2, 2, 2]</summary>
    ResNet18,
    /// <summary>BasicBlock × [3, 4, 6, 3]</summary>
    ResNet34,
    /// <summary>Bottleneck × [3, 4, 6, 3]</summary>
    ResNet50,
    /// <summary>
    /// BasicBlock × [2, 2, 2, 3], widths 64–512: the ImageNet ResNet that CNTK's model zoo exports as "ResNet18"
    /// (ML.NET's DnnImageFeaturizer.ResNet18 package) — one block more in the last stage than torchvision's ResNet-18.
    /// </summary>
    ResNet18Cntk,
}

/// <summary>
/// ResNet with torchvision's parameter and buffer names (<c>conv1.weight</c>, <c>bn1.running_mean</c>,
/// <c>layer1.0.conv1.weight</c>, <c>fc.weight</c>), so torchvision weights saved as safetensors load by name.
/// A width multiplier scales every stage for CPU-sized runs (1.0 is the standard network).
/// </summary>
public sealed class ResNet : Module
{
    private readonly Conv2d _conv1;
    private readonly BatchNorm2d _bn1;
    private readonly MaxPool2d _maxpool;
    private readonly Sequential[] _layers = new Sequential[4];
    private readonly AdaptiveAvgPool2d _avgpool;
    private readonly Linear? _fc;

    /// <summary>Channels of the final feature map (512 for ResNet-18 at width 1, 2048 for ResNet-50).</summary>
    public int FeatureChannels { get; }

    /// <summary>The depth this network was built with.</summary>
    public ResNetDepth Depth { get; }

    /// <summary>
    /// Builds a ResNet. <paramref name="numClasses"/> adds the final "fc" layer (null: the network ends at
    /// the pooled features). Initialisation follows torchvision: Kaiming-normal (fan-out) convs, BN γ=1 β=0.
    /// </summary>
    public ResNet(ResNetDepth depth, int? numClasses = null, double widthMultiplier = 1.0, Rng? rng = null)
    {
        if (widthMultiplier <= 0) throw new ArgumentException($"resnet: width multiplier must be positive, got {widthMultiplier}");
        rng ??= Rng.Default;
        Depth = depth;
        int W(int c) => Math.Max(4, (int)Math.Round(c * widthMultiplier));
        int[] blocks = StageBlocks(depth);
        bool bottleneck = UsesBottleneck(depth);
        int expansion = bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion;

        int inPlanes = W(64);
        _conv1 = RegisterModule("conv1", new Conv2d(3, inPlanes, 7, 2, 3, bias: false, rng: rng));
        _bn1 = RegisterModule("bn1", new BatchNorm2d(inPlanes));
        _maxpool = RegisterModule("maxpool", new MaxPool2d(3, 2, 1));
        int[] planes = [W(64), W(128), W(256), W(512)];
        for (int s = 0; s < 4; s++)
        {
            var layer = new Sequential();
            for (int b = 0; b < blocks[s]; b++)
            {
                int stride = b == 0 && s > 0 ? 2 : 1;
                layer.Add(bottleneck ? new Bottleneck(inPlanes, planes[s], stride, rng) : new BasicBlock(inPlanes, planes[s], stride, rng));
                inPlanes = planes[s] * expansion;
            }
            _layers[s] = RegisterModule($"layer{s + 1}", layer);
        }
        _avgpool = RegisterModule("avgpool", new AdaptiveAvgPool2d(1, 1));
        FeatureChannels = inPlanes;
        if (numClasses is int n) _fc = RegisterModule("fc", new Linear(inPlanes, n, rng: rng));

        foreach (var (name, t) in NamedParameters())
            if (t.Rank == 4 && name.EndsWith("weight", StringComparison.Ordinal)) Init.KaimingNormal(t, rng, FanMode.FanOut);
    }

    /// <summary>Residual blocks in each of the four stages.</summary>
    public static int[] StageBlocks(ResNetDepth depth) => depth switch
    {
        ResNetDepth.ResNet18 => [2, 2, 2, 2],
        ResNetDepth.ResNet18Cntk => [2, 2, 2, 3],
        _ => [3, 4, 6, 3],
    };

    /// <summary>True when the stages are made of bottleneck blocks (ResNet-50), false for basic blocks.</summary>
    public static bool UsesBottleneck(ResNetDepth depth) => depth == ResNetDepth.ResNet50;

    /// <summary>How many leading parts (the stem, then layer1 … layer4) are frozen (0: none).</summary>
    public int FrozenStages { get; private set; }

    /// <summary>
    /// Freezes the first <paramref name="parts"/> parts of the backbone, input side first (1: the stem, 2: the stem and
    /// layer1, …, 5: everything): their parameters stop requiring gradients — so autograd records nothing below the
    /// first trainable layer and computes neither their weight gradients nor the input gradient of that layer — and
    /// their batch-norms keep their running statistics (<see cref="KeepFrozenInEval"/>).
    /// </summary>
    public void Freeze(int parts)
    {
        if (parts is < 0 or > 5) throw new ArgumentOutOfRangeException(nameof(parts), parts, "resnet: 0 (none) to 5 (stem and all four stages) parts can be frozen");
        FrozenStages = parts;
        foreach (var m in FrozenModules())
            foreach (var (_, p) in m.NamedParameters()) p.RequiresGrad = false;
        KeepFrozenInEval();
    }

    /// <summary>Puts the frozen parts back in evaluation mode (call after <see cref="Module.Train"/>).</summary>
    public void KeepFrozenInEval()
    {
        foreach (var m in FrozenModules()) m.Eval();
    }

    private IEnumerable<Module> FrozenModules()
    {
        if (FrozenStages >= 1) { yield return _conv1; yield return _bn1; }
        for (int s = 0; s < FrozenStages - 1; s++) yield return _layers[s];
    }

    /// <summary>The last residual stage (what <c>--expert-depth</c> may replicate per expert).</summary>
    public Sequential Layer4 => _layers[3];

    /// <summary>Stem and the first three stages: x: [N, 3, H, W] → [N, C3, H/16, W/16].</summary>
    public Tensor ForwardToLayer3(Tensor x)
    {
        using var c = _conv1.Forward(x);
        using var r = _bn1.ForwardRelu(c);
        using var p = _maxpool.Forward(r);
        using var l1 = _layers[0].Forward(p);
        using var l2 = _layers[1].Forward(l1);
        return _layers[2].Forward(l2);
    }

    /// <summary>Final feature map: x: [N, 3, H, W] → [N, FeatureChannels, H/32, W/32].</summary>
    public Tensor ForwardFeatureMap(Tensor x)
    {
        using var l3 = ForwardToLayer3(x);
        return _layers[3].Forward(l3);
    }

    /// <summary>Global-average pooled features: [N, FeatureChannels].</summary>
    public Tensor Pool(Tensor featureMap)
    {
        using var p = _avgpool.Forward(featureMap);
        return p.Flatten(1);
    }

    /// <summary>Logits [N, classes] when built with classes, else pooled features [N, FeatureChannels].</summary>
    public override Tensor Forward(Tensor x)
    {
        using var f = ForwardFeatureMap(x);
        var pooled = Pool(f);
        if (_fc is null) return pooled;
        using (pooled) return _fc.Forward(pooled);
    }
}
