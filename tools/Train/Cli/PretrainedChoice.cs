using MtlMoe.Model.Net;

namespace MtlMoe.Train.Cli;

/// <summary>
/// <c>--pretrained imagenet</c> picks the network its weights fit: backbone resnet18-cntk at width 1. It overrides the
/// defaults and a preset's backbone, but an explicit --backbone or --width that disagrees is an error.
/// </summary>
public static class PretrainedChoice
{
    /// <summary>The --pretrained value that means the ImageNet weights.</summary>
    public const string ImageNet = "imagenet";

    /// <summary>Applies the rule; <paramref name="given"/> holds the options named on the command line.</summary>
    public static TrainSettings Resolve(TrainSettings s, IReadOnlyDictionary<string, string?> given)
    {
        if (s.Pretrained != ImageNet) return s;
        if (given.ContainsKey("backbone") && s.Backbone != ImageNetWeights.BackboneName)
            throw new UsageException($"--pretrained imagenet needs --backbone {ImageNetWeights.BackboneName} (the ImageNet weights' architecture), got '{s.Backbone}'");
        if (given.ContainsKey("width") && s.Width != 1.0)
            throw new UsageException($"--pretrained imagenet needs --width 1 (the ImageNet weights are full width), got {s.Width}");
        return s with { Backbone = ImageNetWeights.BackboneName, Width = 1.0 };
    }
}
