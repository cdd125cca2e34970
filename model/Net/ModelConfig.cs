using System.Text.Json;
using System.Text.Json.Serialization;
using MtlMoe.Model.Backbone;
using MtlMoe.Model.IO;

namespace MtlMoe.Model.Net;

/// <summary>
/// Everything needed to rebuild an <see cref="MtlMoeNet"/> (checkpoints carry it as JSON in their metadata,
/// so a checkpoint file describes itself).
/// </summary>
public sealed record ModelConfig
{
    /// <summary>single, moe, mtl or mtl-moe.</summary>
    public ModelVariant Variant { get; init; } = ModelVariant.MtlMoe;
    /// <summary>The backbone (resnet18, resnet34, resnet50).</summary>
    public BackboneKind Backbone { get; init; } = BackboneKind.ResNet18;
    /// <summary>Backbone width multiplier.</summary>
    public double Width { get; init; } = 1.0;
    /// <summary>Number of classes.</summary>
    public int Classes { get; init; } = 200;
    /// <summary>Experts E (variants with MoE; 1 otherwise).</summary>
    public int Experts { get; init; } = 4;
    /// <summary>Experts per image k.</summary>
    public int K { get; init; } = 2;
    /// <summary>head (MLP per expert) or layer4 (each expert owns a copy of the last residual stage).</summary>
    public ExpertDepth ExpertDepth { get; init; } = ExpertDepth.Head;
    /// <summary>Square input resolution (the localization head's map size depends on it).</summary>
    public int Resolution { get; init; } = 224;
    /// <summary>Hidden units of an expert's MLP head.</summary>
    public int Hidden { get; init; } = 256;
    /// <summary>Dropout inside the expert heads.</summary>
    public double Dropout { get; init; } = 0.2;
    /// <summary>
    /// Start the last batch-norm of every residual block at γ = 0, so each block begins as the identity (Goyal et al.
    /// 2017); helps a small network trained from scratch. Pretrained weights overwrite it.
    /// </summary>
    public bool ZeroInitResidual { get; init; }
    /// <summary>Learned uncertainty weighting (adds the registered log-variances "task_weights.s_cls/s_box").</summary>
    public bool LearnedWeighting { get; init; }

    /// <summary>True for moe and mtl-moe.</summary>
    [JsonIgnore] public bool HasMoe => Variant.HasMoe();
    /// <summary>True for mtl and mtl-moe.</summary>
    [JsonIgnore] public bool HasBox => Variant.HasBox();
    /// <summary>Experts actually built (1 without MoE).</summary>
    [JsonIgnore] public int EffectiveExperts => HasMoe ? Experts : 1;
    /// <summary>Experts per row actually used (1 without MoE).</summary>
    [JsonIgnore] public int EffectiveK => HasMoe ? K : 1;

    /// <summary>
    /// The backbone names: torchvision's resnet18/34/50, and resnet18-cntk, the [2, 2, 2, 3] ResNet whose ImageNet
    /// weights ship in the DnnImageFeaturizer.ResNet18 package (named for where its architecture comes from, so it is
    /// never mistaken for torchvision's ResNet-18, whose checkpoints do not fit it).
    /// </summary>
    public static readonly IReadOnlyList<string> Backbones = ["resnet18", "resnet34", "resnet50", "resnet18-cntk"];

    /// <summary>The backbone depth enum.</summary>
    [JsonIgnore] public ResNetDepth Depth => BackboneKinds.Depth(Backbone);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Variant)) throw new ArgumentException($"model config: unknown variant {(int)Variant}");
        if (!Enum.IsDefined(Backbone)) throw new ArgumentException($"model config: unknown backbone {(int)Backbone}");
        if (!Enum.IsDefined(ExpertDepth)) throw new ArgumentException($"model config: unknown expert depth {(int)ExpertDepth}");
        if (Classes < 1) throw new ArgumentException($"model config: classes must be positive, got {Classes}");
        if (HasMoe && (Experts < 1 || K < 1 || K > Experts)) throw new ArgumentException($"model config: need 1 <= k ({K}) <= experts ({Experts})");
        if (Resolution < 32) throw new ArgumentException($"model config: resolution must be at least 32, got {Resolution}");
        if (!(Width > 0)) throw new ArgumentException($"model config: width must be positive, got {Width}");
    }

    /// <summary>Side of the final feature map for this resolution (each of the five stride-2 stages rounds up).</summary>
    [JsonIgnore] public int FeatureMapSize
    {
        get { int s = Resolution; for (int i = 0; i < 5; i++) s = (s + 1) / 2; return s; }
    }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>One-line JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses <see cref="ToJson"/>'s output; a malformed text is an <see cref="ArgumentException"/> saying where.</summary>
    public static ModelConfig FromJson(string json)
    {
        ModelConfig? c;
        try { c = JsonSerializer.Deserialize<ModelConfig>(json, Json); }
        catch (JsonException e) { throw new ArgumentException($"model config: {e.Message}", e); }
        (c ?? throw new ArgumentException("model config: empty JSON")).Validate();
        return c;
    }
}
