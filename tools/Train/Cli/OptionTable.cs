using System.Text;
using System.Text.Json.Serialization;
using MtlMoe.Model.IO;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;

namespace MtlMoe.Train.Cli;

/// <summary>The program's commands.</summary>
[JsonConverter(typeof(ChoiceJsonConverter<CommandKind>))]
public enum CommandKind
{
    /// <summary>Train a model (the default).</summary>
    [ChoiceName("train")] Train,
    /// <summary>Evaluate a checkpoint on the test split.</summary>
    [ChoiceName("eval")] Eval,
    /// <summary>Classify images with a checkpoint.</summary>
    [ChoiceName("predict")] Predict,
    /// <summary>Train the four variants and compare them.</summary>
    [ChoiceName("ablate")] Ablate,
}

/// <summary>Which commands take an option.</summary>
[Flags]
public enum Takes
{
    /// <summary>train.</summary>
    Train = 1,
    /// <summary>eval.</summary>
    Eval = 2,
    /// <summary>predict.</summary>
    Predict = 4,
    /// <summary>ablate.</summary>
    Ablate = 8,
    /// <summary>train and ablate (everything that trains).</summary>
    Training = Train | Ablate,
    /// <summary>Every command.</summary>
    All = Train | Eval | Predict | Ablate,
}

/// <summary>One option: its name, value placeholder (null for a flag), help line, section and commands.</summary>
public sealed record OptionSpec(string Name, string? Value, string Help, string Section, Takes Commands)
{
    /// <summary>True for an option without a value.</summary>
    public bool IsFlag => Value is null;
}

/// <summary>Every option of the program, and the help texts made from them (one place for names, help and applicability).</summary>
public static class OptionTable
{
    private static string Choices<T>() where T : struct, Enum => string.Join("|", ChoiceNames.Names<T>());

    /// <summary>The options, in help order.</summary>
    public static readonly IReadOnlyList<OptionSpec> All =
    [
        new("data", "DIR", "a CUB_200_2011 folder (or one holding it); default: the synthetic birds set", "data", Takes.Training | Takes.Eval),
        new("skip-bad", null, "leave out images that fail the check (listed in RUN/skipped.txt) instead of stopping", "data", Takes.Training | Takes.Eval),
        new("max-image-pixels", "N", "refuse images whose header claims more pixels (default 40000000)", "data", Takes.All),
        new("synthetic-classes", "N", "synthetic set: classes (default 20)", "data", Takes.Training | Takes.Eval),
        new("synthetic-images", "N", "synthetic set: images per class (default 120)", "data", Takes.Training | Takes.Eval),
        new("synthetic-size", "PX", "synthetic set: image size (default 160)", "data", Takes.Training | Takes.Eval),

        new("variant", Choices<ModelVariant>(), "heads: one expert or a mixture, with or without the box (default mtl-moe)", "model", Takes.Train),
        new("backbone", Choices<BackboneKind>(), "backbone network (default resnet18)", "model", Takes.Training),
        new("width", "X", "backbone width multiplier, 1 = torchvision's (default 0.25)", "model", Takes.Training),
        new("experts", "E", "experts in the mixture (default 4)", "model", Takes.Training),
        new("k", "K", "experts per image (default 2)", "model", Takes.Training),
        new("expert-depth", Choices<ExpertDepth>(), "an expert is an MLP head or a copy of layer4 (default head)", "model", Takes.Training),
        new("hidden", "N", "hidden units of an expert's MLP (default 256)", "model", Takes.Training),
        new("dropout", "X", "dropout in the experts (default 0.2)", "model", Takes.Training),
        new("zero-init-residual", "on|off", "start every residual block as the identity", "model", Takes.Training),
        new("pretrained", "imagenet|none|FILE", "backbone weights: the ImageNet ResNet (the default when no network is named), none, or a .safetensors/.pth file with torchvision names", "model", Takes.Training),
        new("freeze", Choices<FreezeThrough>(), "freeze the backbone from the input up to and including this part (default none)", "model", Takes.Training),
        new("backbone-lr", "X", "the backbone's learning rate as a fraction of --lr (default 1)", "model", Takes.Training),
        new("init-experts-from", "CHECKPOINT", "start every expert from a single-expert run's head", "model", Takes.Training),

        new("epochs", "N", "training epochs (default 70); with --resume: the new total", "training", Takes.Training),
        new("batch", "N", "images per batch (default 32)", "training", Takes.Training | Takes.Eval),
        new("lr", "X", "peak learning rate (default 0.1), warm-up then cosine", "training", Takes.Training),
        new("optimizer", Choices<OptimizerKind>(), "optimizer (default sgd, momentum 0.9)", "training", Takes.Training),
        new("weight-decay", "X", "weight decay (default 5e-4)", "training", Takes.Training),
        new("warmup", "X", "warm-up epochs (default 1)", "training", Takes.Training),
        new("res", "PX", "square crop the model sees (default 128)", "training", Takes.Training),
        new("resize", "PX", "shorter side before the crop (default: 8/7 of --res)", "training", Takes.Training),
        new("jitter", "X", "colour jitter strength (default 0)", "training", Takes.Training),
        new("label-smoothing", "X", "label smoothing (default 0.1)", "training", Takes.Training),
        new("lambda-loc", "X", "weight of the box loss (default 1)", "training", Takes.Training),
        new("learned-weighting", null, "learn the task weights instead of --lambda-loc", "training", Takes.Training),
        new("seed", "N", "seed of every random choice (default 1)", "training", Takes.Training),
        new("seeds", "N", "ablate: train every variant with N seeds (--seed, --seed+1, …): mean ± sd, paired differences", "training", Takes.Ablate),
        new("preset", "cub448", "the standard CUB recipe (ResNet-50, 448 px, SGD 0.01, 50 epochs, TF32)", "training", Takes.Training),
        new("max-batches", "N", "at most N training batches per epoch (smoke tests)", "training", Takes.Training),

        new("out", "DIR", "run folder (default runs/<time>-<variant>)", "run", Takes.Training),
        new("resume", "RUN_DIR", "continue a run (train) or evaluate its best.safetensors (eval)", "run", Takes.Train | Takes.Eval),
        new("checkpoint", "FILE", "the model to evaluate or predict with", "run", Takes.Eval | Takes.Predict),
        new("json", null, "one JSON object per image on stdout", "run", Takes.Predict),
        new("annotate", "DIR", "write each image with its box and top class as PNG", "run", Takes.Predict),

        new("device", "auto|cpu|cuda|cuda:N", "where to compute (default auto: a usable GPU, else the CPU)", "machine", Takes.All),
        new("tf32", null, "on a GPU, TF32 tensor cores for matrix products and convolutions", "machine", Takes.All),
        new("amp", Choices<AmpMode>(), "mixed precision: bf16 autocast of convolutions and matrix products, losses, statistics and gating in float32 (default off); on the CPU the bf16 ops are reference implementations: correct, but slower than off", "machine", Takes.Training),
        new("threads", "N", "CPU threads for compute (default: all cores)", "machine", Takes.All),
        new("workers", "N", "data-loading threads (default 2)", "machine", Takes.Training | Takes.Eval),

        new("plain", null, "plain progress lines even on a terminal", "output", Takes.Training),
        new("debug", null, "print the stack trace under an error (also MTLMOE_DEBUG=1)", "output", Takes.All),
        new("help", null, "this help (also -h, and 'help COMMAND')", "output", Takes.All),
    ];

    private static readonly Dictionary<string, OptionSpec> ByName = All.ToDictionary(o => o.Name);

    /// <summary>The option called <paramref name="name"/> (without "--"), if any.</summary>
    public static OptionSpec? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>True when <paramref name="command"/> takes <paramref name="option"/>.</summary>
    public static bool Applies(OptionSpec option, CommandKind command) => (option.Commands & (Takes)(1 << (int)command)) != 0;

    private const string Program = "dotnet run --project tools/Train --";

    private static readonly (CommandKind Kind, string Usage, string What)[] Commands =
    [
        (CommandKind.Train, "[train] [options]", "train a model (the default command); without --data, on the synthetic birds set; without --pretrained, --backbone, --width or --preset, from the ImageNet weights with their recipe (resnet18-cntk, lr 0.01, 10 epochs, 160 px) — the defaults below are the from-scratch ones"),
        (CommandKind.Eval, "eval --checkpoint FILE | --resume RUN_DIR [options]", "evaluate a checkpoint on the test split of its data set"),
        (CommandKind.Predict, "predict IMAGE|DIR… --checkpoint FILE [options]", "top-5 classes, box (image pixels) and expert route per image"),
        (CommandKind.Ablate, "ablate [options]", "train single, moe, mtl and mtl-moe with one budget and the same seeds (--seeds N); compare them"),
    ];

    /// <summary>The overview: commands, then the train command's options.</summary>
    public static string GeneralHelp()
    {
        var sb = new StringBuilder();
        sb.Append($"usage: {Program} [train|eval|predict|ablate] [options]\n\ncommands:\n");
        foreach (var (kind, _, what) in Commands) sb.Append($"  {kind.ToChoiceName(),-8} {what}\n");
        sb.Append("\n'COMMAND --help' or 'help COMMAND' lists a command's options; @FILE reads arguments from FILE.\n\n");
        return sb.Append(Options(CommandKind.Train)).ToString();
    }

    /// <summary>The help of one command: usage, what it does, its options.</summary>
    public static string CommandHelp(CommandKind command)
    {
        var (_, usage, what) = Commands.Single(c => c.Kind == command);
        return $"usage: {Program} {usage}\n\n{what}\n\n" + Options(command) + Exits;
    }

    private const string Exits = "\nexit codes: 0 done, 1 bad data or files (one line 'error: FILE[:LINE]: …'), 2 bad options, 130 interrupted\n";

    private static string Options(CommandKind command)
    {
        var sb = new StringBuilder();
        foreach (var section in All.Where(o => Applies(o, command)).GroupBy(o => o.Section))
        {
            sb.Append($"{section.Key}:\n");
            foreach (var o in section)
            {
                string left = o.IsFlag ? $"--{o.Name}" : $"--{o.Name} {o.Value}";
                sb.Append(left.Length <= 28 ? $"  {left,-28} {o.Help}\n" : $"  {left}\n  {"",-28} {o.Help}\n");
            }
        }
        return sb.ToString();
    }
}
