using MtlMoe.Model.IO;
using MtlMoe.Model.Net;

namespace MtlMoe.Train.Cli;

/// <summary>
/// Which weights a run starts from, and the recipe that goes with the ImageNet ones.
/// <list type="bullet">
/// <item><c>train</c> and <c>ablate</c> without --pretrained, --backbone, --width or --preset start from the ImageNet
/// weights (the default run); <c>--pretrained none</c> trains from scratch with the from-scratch defaults
/// (ResNet-18 ×0.25, lr 0.1, 70 epochs, 128 px).</item>
/// <item><c>--pretrained imagenet</c> (given or by default) picks the network its weights fit — resnet18-cntk at
/// width 1 — overriding the defaults and a preset's backbone; an explicit --backbone or --width that disagrees is an
/// error. Without a preset, its recipe fills every option not given: lr 0.01, 10 epochs, 160-px crops of 176-px images
/// (measured: 80.0 % test top-1 on the default synthetic set, best 81.0 %; see docs/transfer-learning.md).</item>
/// </list>
/// </summary>
public static class PretrainedChoice
{
    /// <summary>The --pretrained value that means the ImageNet weights.</summary>
    public const string ImageNet = "imagenet";
    /// <summary>The --pretrained value that means no pretrained weights.</summary>
    public const string None = "none";

    /// <summary>The ImageNet recipe: peak learning rate.</summary>
    public const double RecipeLr = 0.01;
    /// <summary>The ImageNet recipe: epochs.</summary>
    public const int RecipeEpochs = 10;
    /// <summary>The ImageNet recipe: crop (the synthetic images are 160 px).</summary>
    public const int RecipeRes = 160;
    /// <summary>The ImageNet recipe: resize before the crop.</summary>
    public const int RecipeResize = 176;

    /// <summary>Applies the rules; <paramref name="given"/> holds the options named on the command line.</summary>
    public static TrainSettings Resolve(TrainSettings s, IReadOnlyDictionary<string, string?> given)
    {
        if (s.Pretrained == None) return s with { Pretrained = null };
        bool picksNetwork = given.ContainsKey("pretrained") || given.ContainsKey("backbone") || given.ContainsKey("width") || given.ContainsKey("preset");
        if (!picksNetwork && s.Command is CommandKind.Train or CommandKind.Ablate && s.Resume is null) s = s with { Pretrained = ImageNet };
        if (s.Pretrained != ImageNet) return s;
        if (given.ContainsKey("backbone") && s.Backbone != ImageNetWeights.Backbone)
            throw new UsageException($"--pretrained imagenet needs --backbone {ImageNetWeights.Backbone.ToChoiceName()} (the ImageNet weights' architecture), got '{s.Backbone.ToChoiceName()}'");
        if (given.ContainsKey("width") && s.Width != 1.0)
            throw new UsageException($"--pretrained imagenet needs --width 1 (the ImageNet weights are full width), got {s.Width}");
        s = s with { Backbone = ImageNetWeights.Backbone, Width = 1.0 };
        if (given.ContainsKey("preset")) return s;
        bool Free(string option) => !given.ContainsKey(option);
        return s with
        {
            Lr = Free("lr") ? RecipeLr : s.Lr,
            Epochs = Free("epochs") ? RecipeEpochs : s.Epochs,
            Res = Free("res") ? RecipeRes : s.Res,
            Resize = Free("resize") && Free("res") ? RecipeResize : s.Resize,
        };
    }
}
