using System.Text.Json.Serialization;
using MtlMoe.Model.Backbone;
using MtlMoe.Model.IO;

namespace MtlMoe.Model.Net;

/// <summary>Which heads the network has: one expert or a mixture, with or without the box head.</summary>
[JsonConverter(typeof(ChoiceJsonConverter<ModelVariant>))]
public enum ModelVariant
{
    /// <summary>One classifier head, no box.</summary>
    [ChoiceName("single")] Single,
    /// <summary>A mixture of experts, no box.</summary>
    [ChoiceName("moe")] Moe,
    /// <summary>One classifier head and the box head.</summary>
    [ChoiceName("mtl")] Mtl,
    /// <summary>A mixture of experts and the box head (the paper's model).</summary>
    [ChoiceName("mtl-moe")] MtlMoe,
}

/// <summary>
/// The backbone network by name. A new backbone is one member here (its spelling in the attribute) and one row
/// in <see cref="BackboneKinds.Depth"/>.
/// </summary>
[JsonConverter(typeof(ChoiceJsonConverter<BackboneKind>))]
public enum BackboneKind
{
    /// <summary>torchvision's ResNet-18.</summary>
    [ChoiceName("resnet18")] ResNet18,
    /// <summary>torchvision's ResNet-34.</summary>
    [ChoiceName("resnet34")] ResNet34,
    /// <summary>torchvision's ResNet-50.</summary>
    [ChoiceName("resnet50")] ResNet50,
    /// <summary>
    /// The [2, 2, 2, 3] BasicBlock ResNet whose ImageNet weights ship in the DnnImageFeaturizer.ResNet18 package (CNTK's
    /// export): named for where its architecture comes from, so it is never mistaken for torchvision's ResNet-18, whose
    /// checkpoints do not fit it.
    /// </summary>
    [ChoiceName("resnet18-cntk")] ResNet18Cntk,
}

/// <summary>How much of the backbone is frozen, from the input up to and including the named part.</summary>
[JsonConverter(typeof(ChoiceJsonConverter<FreezeThrough>))]
public enum FreezeThrough
{
    /// <summary>Nothing frozen.</summary>
    [ChoiceName("none")] None,
    /// <summary>conv1 and bn1.</summary>
    [ChoiceName("stem")] Stem,
    /// <summary>The stem and layer1.</summary>
    [ChoiceName("layer1")] Layer1,
    /// <summary>Up to layer2.</summary>
    [ChoiceName("layer2")] Layer2,
    /// <summary>Up to layer3.</summary>
    [ChoiceName("layer3")] Layer3,
    /// <summary>The whole backbone.</summary>
    [ChoiceName("layer4")] Layer4,
}

/// <summary>What an expert is.</summary>
[JsonConverter(typeof(ChoiceJsonConverter<ExpertDepth>))]
public enum ExpertDepth
{
    /// <summary>An MLP classifier on the pooled features.</summary>
    [ChoiceName("head")] Head,
    /// <summary>A copy of the backbone's last residual stage plus a classifier, on the layer3 map.</summary>
    [ChoiceName("layer4")] Layer4,
}

/// <summary>Facts about the backbones.</summary>
public static class BackboneKinds
{
    /// <summary>The ResNet depth that builds <paramref name="kind"/>.</summary>
    public static ResNetDepth Depth(BackboneKind kind) => kind switch
    {
        BackboneKind.ResNet18 => ResNetDepth.ResNet18,
        BackboneKind.ResNet34 => ResNetDepth.ResNet34,
        BackboneKind.ResNet50 => ResNetDepth.ResNet50,
        BackboneKind.ResNet18Cntk => ResNetDepth.ResNet18Cntk,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown backbone"),
    };
}

/// <summary>Facts about the variants.</summary>
public static class ModelVariants
{
    /// <summary>True for moe and mtl-moe.</summary>
    public static bool HasMoe(this ModelVariant v) => v is ModelVariant.Moe or ModelVariant.MtlMoe;
    /// <summary>True for mtl and mtl-moe.</summary>
    public static bool HasBox(this ModelVariant v) => v is ModelVariant.Mtl or ModelVariant.MtlMoe;
}
