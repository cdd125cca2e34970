using MtlMoe.Engine;
using MtlMoe.Engine.NN;
using MtlMoe.Model.Backbone;

namespace MtlMoe.Model.Net;

/// <summary>The default expert: a small MLP classifier, x: [n, inFeatures] → logits [n, classes] (children fc1, fc2).</summary>
public sealed class MlpExpert : Module
{
    private readonly Linear _fc1, _fc2;
    private readonly Dropout _drop;

    /// <summary>Linear(in, hidden) → ReLU → Dropout(p) → Linear(hidden, classes).</summary>
    public MlpExpert(int inFeatures, int hidden, int classes, double dropout, Rng initRng, Rng dropoutRng)
    {
        _fc1 = RegisterModule("fc1", new Linear(inFeatures, hidden, rng: initRng));
        _drop = RegisterModule("drop", new Dropout(dropout, dropoutRng));
        _fc2 = RegisterModule("fc2", new Linear(hidden, classes, rng: initRng));
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor x)
    {
        using var h = _fc1.Forward(x);     // [n, hidden]
        using var a = Ops.Relu(h);
        using var d = _drop.Forward(a);
        return _fc2.Forward(d);            // [n, classes]
    }
}

/// <summary>
/// The deep expert (<c>--expert-depth layer4</c>): owns a copy of the backbone's last residual stage. Its input is
/// the layer3 map flattened per row (what an MoE layer routes), x: [n, C3·h·w] → logits [n, classes].
/// Children: layer4 (torchvision block names inside, so it can be copied from the backbone's), drop, fc.
/// </summary>
public sealed class Layer4Expert : Module
{
    private readonly Sequential _layer4;
    private readonly Dropout _drop;
    private readonly Linear _fc;
    private readonly int _c3, _h3, _h4;

    /// <summary>A layer4 stage for <paramref name="depth"/> and <paramref name="width"/>, over a [C3, h3, h3] map.</summary>
    public Layer4Expert(ResNetDepth depth, double width, int c3, int h3, int classes, double dropout, Rng initRng, Rng dropoutRng)
    {
        _c3 = c3; _h3 = h3; _h4 = (h3 + 1) / 2;   // the stage's first block has stride 2
        (_layer4, int outChannels) = BuildLayer4(depth, width, c3, initRng);
        _layer4 = RegisterModule("layer4", _layer4);
        _drop = RegisterModule("drop", new Dropout(dropout, dropoutRng));
        _fc = RegisterModule("fc", new Linear(outChannels, classes, rng: initRng));
    }

    /// <summary>The expert's residual stage.</summary>
    public Sequential Layer4 => _layer4;

    /// <inheritdoc />
    public override Tensor Forward(Tensor x)
    {
        using var map = x.Reshape(x.Shape[0], _c3, _h3, _h3);  // [n, C3, h3, h3]
        using var f = ForwardStage(map);                        // [n, C4, h4, h4]
        using var p = Ops.Mean(f, [2, 3]);                      // [n, C4]
        using var d = _drop.Forward(p);
        return _fc.Forward(d);
    }

    // The router may send this expert a single row; with a 1×1 output map (inputs of 32 px) its batch-norms would
    // then see one value per channel, which has no batch statistics. Such a call normalises with the running
    // statistics instead (gradients still reach the weights, the running statistics stay as they are).
    private Tensor ForwardStage(Tensor map)
    {
        bool oneValue = Training && map.Shape[0] * _h4 * _h4 == 1;
        if (!oneValue) return _layer4.Forward(map);
        _layer4.Eval();
        try { return _layer4.Forward(map); }
        finally { _layer4.Train(); }
    }

    /// <summary>The last stage exactly as <see cref="ResNet"/> builds it (same widths, rounding and block names).</summary>
    internal static (Sequential Stage, int OutChannels) BuildLayer4(ResNetDepth depth, double width, int inPlanes, Rng rng)
    {
        int planes = Math.Max(4, (int)Math.Round(512 * width));
        int blocks = ResNet.StageBlocks(depth)[3];
        bool bottleneck = ResNet.UsesBottleneck(depth);
        var layer = new Sequential();
        for (int b = 0; b < blocks; b++)
        {
            layer.Add(bottleneck ? new Bottleneck(inPlanes, planes, b == 0 ? 2 : 1, rng) : new BasicBlock(inPlanes, planes, b == 0 ? 2 : 1, rng));
            inPlanes = planes * (bottleneck ? Bottleneck.Expansion : BasicBlock.Expansion);
        }
        foreach (var (name, t) in layer.NamedParameters())
            if (t.Rank == 4 && name.EndsWith("weight", StringComparison.Ordinal)) Init.KaimingNormal(t, rng, FanMode.FanOut);
        return (layer, inPlanes);
    }
}

/// <summary>
/// Learned uncertainty weighting (Kendall et al. 2018): log-variances s_cls and s_box, each [1], registered as
/// parameters; the loss is Σ exp(−sᵢ)·Lᵢ + sᵢ.
/// </summary>
public sealed class TaskWeights : Module
{
    /// <summary>s for the classification loss, [1], starts at 0.</summary>
    public Tensor SCls { get; }
    /// <summary>s for the box loss, [1], starts at 0.</summary>
    public Tensor SBox { get; }

    /// <summary>Both log-variances at 0 (weights 1).</summary>
    public TaskWeights()
    {
        SCls = RegisterParameter("s_cls", DisposeScope.Outside(() => Tensor.Zeros([1])));
        SBox = RegisterParameter("s_box", DisposeScope.Outside(() => Tensor.Zeros([1])));
    }

    /// <summary>exp(−s)·loss + s for one task: a [1] tensor.</summary>
    public static Tensor Weigh(Tensor loss, Tensor s)
    {
        using var neg = Ops.Neg(s);
        using var w = Ops.Exp(neg);
        using var wl = Ops.Mul(w, loss);
        return Ops.Add(wl, s);
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor x) => throw new NotSupportedException("task weights have no forward; use Weigh");
}
