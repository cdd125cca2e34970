using MtlMoe.Engine;
using MtlMoe.Engine.NN;

namespace MtlMoe.Model.Heads;

/// <summary>
/// Regresses the bird's box from the backbone's final feature map. A 1×1 conv reduces channels, the
/// small spatial map is flattened (keeping where the bird is, which global pooling would discard), and
/// an MLP predicts (cx, cy, w, h) through a sigmoid, returned as normalised (x0, y0, x1, y1).
/// </summary>
public sealed class LocalizationHead : Module
{
    private readonly Conv2d _reduce;
    private readonly BatchNorm2d _bn;
    private readonly Linear _fc1, _fc2;

    /// <summary>features: [N, channels, mapH, mapW] → boxes [N, 4].</summary>
    public LocalizationHead(int channels, int mapH, int mapW, int reduced = 32, int hidden = 128, Rng? rng = null)
    {
        rng ??= Rng.Default;
        _reduce = RegisterModule("reduce", new Conv2d(channels, reduced, 1, bias: false, rng: rng));
        _bn = RegisterModule("bn", new BatchNorm2d(reduced));
        _fc1 = RegisterModule("fc1", new Linear(reduced * mapH * mapW, hidden, rng: rng));
        _fc2 = RegisterModule("fc2", new Linear(hidden, 4, rng: rng));
        MapH = mapH; MapW = mapW;
    }

    /// <summary>Expected feature-map height.</summary>
    public int MapH { get; }
    /// <summary>Expected feature-map width.</summary>
    public int MapW { get; }

    /// <summary>features: [N, C, h, w] → boxes [N, 4] as normalised (x0, y0, x1, y1).</summary>
    public override Tensor Forward(Tensor features)
    {
        if (features.Rank != 4 || features.Shape[2] != MapH || features.Shape[3] != MapW)
            throw new ShapeException($"localization head: expected a feature map [N, C, {MapH}, {MapW}], got {Shapes.Format(features.Shape)}");
        using var r = _reduce.Forward(features);
        using var a = _bn.ForwardRelu(r);
        using var flat = a.Flatten(1);
        using var h = _fc1.Forward(flat);
        using var ha = Ops.Relu(h);
        using var raw = _fc2.Forward(ha);
        using var cxcywh = Ops.Sigmoid(raw);
        return Ops.BoxCxCyWhToXyXy(cxcywh);
    }
}
