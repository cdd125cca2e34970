using System.Globalization;

namespace MtlMoe.Train.Cli;

/// <summary>Thrown for a bad command line; the message is one line for the user.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Parses <c>[command] [--option value | --flag]… [inputs…]</c> into <see cref="TrainSettings"/>.</summary>
public static class CommandLine
{
    private static readonly string[] Commands = ["train", "eval", "predict", "ablate"];
    private static readonly HashSet<string> Flags = ["learned-weighting", "skip-bad", "plain", "tf32", "help"];

    /// <summary>The usage text.</summary>
    public const string Usage = """
        usage: dotnet run --project tools/Train -- [train|eval|predict|ablate] [options]

          train    train a model (the default); without --data, on the synthetic birds set; without --pretrained,
                   --backbone, --width or --preset, from the ImageNet weights (lr 0.01, 10 epochs, 160 px)
          eval     evaluate --checkpoint on the test split
          predict  IMAGE|DIR… --checkpoint FILE: top-5 classes, box and expert route per image
          ablate   train single, moe, mtl and mtl-moe with one budget (--seeds N: N seeds each, mean ± sd,
                   paired differences against mtl-moe); write a comparison

        data      --data DIR (a CUB_200_2011 folder)  --skip-bad  --synthetic-classes N
                  --synthetic-images N (per class)  --synthetic-size PX
        model     --variant single|moe|mtl|mtl-moe  --backbone resnet18|resnet34|resnet50|resnet18-cntk  --width X
                  --experts E  --k K  --expert-depth head|layer4  --pretrained imagenet|none|FILE (.safetensors, .pth)
                  --freeze none|stem|layer1|layer2|layer3|layer4  --backbone-lr X (× --lr)  --init-experts-from CHECKPOINT  --hidden N (expert MLP)  --dropout X
                  --zero-init-residual on|off
        training  --epochs N  --batch N  --lr X  --optimizer sgd|adamw  --weight-decay X  --warmup X (epochs)
                  --res PX  --resize PX  --jitter X (colour)  --label-smoothing X  --lambda-loc X  --learned-weighting
                  --seed N  --seeds N (ablate)  --threads N  --workers N  --device auto|cpu|cuda  --tf32 (GPU)  --preset cub448
        output    --out DIR  --resume RUN_DIR  --checkpoint FILE  --annotate DIR  --plain
        """;

    /// <summary>Parses the arguments; throws <see cref="UsageException"/> with one clear line on any error.</summary>
    public static TrainSettings Parse(IReadOnlyList<string> args)
    {
        var s = new TrainSettings();
        int i = 0;
        if (args.Count > 0 && !args[0].StartsWith('-'))
        {
            if (!Commands.Contains(args[0])) throw new UsageException($"unknown command '{args[0]}' (expected {string.Join(", ", Commands)})");
            s = s with { Command = args[0] };
            i = 1;
        }
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        var inputs = new List<string>();
        for (; i < args.Count; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                if (s.Command != "predict") throw new UsageException($"unexpected argument '{a}' (options look like --name value)");
                inputs.Add(a);
                continue;
            }
            var name = a[2..];
            if (Flags.Contains(name)) { values[name] = null; continue; }
            if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"option --{name} needs a value");
            values[name] = args[++i];
        }
        if (values.ContainsKey("help")) throw new UsageException("help requested");

        if (values.TryGetValue("preset", out var preset)) s = ApplyPreset(s, preset!);
        foreach (var (name, value) in values) s = Apply(s, name, value);
        s = PretrainedChoice.Resolve(s, values);
        if (inputs.Count > 0) s = s with { Inputs = inputs };
        Validate(s);
        return s;
    }

    /// <summary>
    /// The standard CUB recipe: ResNet-50, resize 512, crop 448, flip and colour jitter 0.4, SGD momentum 0.9,
    /// lr 0.01 with warm-up and cosine, weight decay 5e-4, batch 16.
    /// </summary>
    private static TrainSettings ApplyPreset(TrainSettings s, string preset) => preset switch
    {
        "cub448" => s with { Backbone = "resnet50", Width = 1.0, Res = 448, Resize = 512, Optimizer = "sgd", Lr = 0.01, WeightDecay = 5e-4, Batch = 16, Epochs = 50, WarmupEpochs = 2, Jitter = 0.4, Tf32 = true },
        "none" => s,
        _ => throw new UsageException($"unknown preset '{preset}' (expected cub448)"),
    };

    private static TrainSettings Apply(TrainSettings s, string name, string? v) => name switch
    {
        "preset" => s with { Preset = v },
        "data" => s with { Data = v },
        "device" => s with { Device = v! },
        "backbone" => s with { Backbone = v! },
        "width" => s with { Width = Double(name, v) },
        "variant" => s with { Variant = v! },
        "experts" => s with { Experts = Int(name, v) },
        "k" => s with { K = Int(name, v) },
        "expert-depth" => s with { ExpertDepth = v! },
        "epochs" => s with { Epochs = Int(name, v) },
        "batch" => s with { Batch = Int(name, v) },
        "lr" => s with { Lr = Double(name, v) },
        "optimizer" => s with { Optimizer = v! },
        "weight-decay" => s with { WeightDecay = Double(name, v) },
        "warmup" => s with { WarmupEpochs = Double(name, v) },
        "res" => s with { Res = Int(name, v) },
        "resize" => s with { Resize = Int(name, v) },
        "jitter" => s with { Jitter = Double(name, v) },
        "hidden" => s with { Hidden = Int(name, v) },
        "dropout" => s with { Dropout = Double(name, v) },
        "zero-init-residual" => s with { ZeroInitResidual = Bool(name, v) },
        "seed" => s with { Seed = ulong.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var seed) ? seed : throw new UsageException($"--seed expects a non-negative integer, got '{v}'") },
        "seeds" => s with { Seeds = Int(name, v) },
        "threads" => s with { Threads = Int(name, v) },
        "workers" => s with { Workers = Int(name, v) },
        "out" => s with { Out = v },
        "resume" => s with { Resume = v },
        "label-smoothing" => s with { LabelSmoothing = Double(name, v) },
        "lambda-loc" => s with { LambdaLoc = Double(name, v) },
        "learned-weighting" => s with { LearnedWeighting = true },
        "pretrained" => s with { Pretrained = v },
        "freeze" => s with { Freeze = v! },
        "backbone-lr" => s with { BackboneLr = Double(name, v) },
        "init-experts-from" => s with { InitExpertsFrom = v },
        "checkpoint" => s with { Checkpoint = v },
        "annotate" => s with { Annotate = v },
        "synthetic-classes" => s with { SyntheticClasses = Int(name, v) },
        "synthetic-images" => s with { SyntheticImagesPerClass = Int(name, v) },
        "synthetic-size" => s with { SyntheticSize = Int(name, v) },
        "skip-bad" => s with { SkipBad = true },
        "max-batches" => s with { MaxBatches = Int(name, v) },
        "plain" => s with { Plain = true },
        "tf32" => s with { Tf32 = true },
        _ => throw new UsageException($"unknown option --{name}"),
    };

    private static bool Bool(string name, string? v) => v switch
    {
        "on" or "true" => true,
        "off" or "false" => false,
        _ => throw new UsageException($"--{name} expects on or off, got '{v}'"),
    };

    private static int Int(string name, string? v) =>
        int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x : throw new UsageException($"--{name} expects an integer, got '{v}'");

    private static double Double(string name, string? v) =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && double.IsFinite(x) ? x : throw new UsageException($"--{name} expects a number, got '{v}'");

    private static void Validate(TrainSettings s)
    {
        string[] variants = ["single", "moe", "mtl", "mtl-moe"];
        if (!variants.Contains(s.Variant)) throw new UsageException($"--variant must be one of {string.Join(", ", variants)}, got '{s.Variant}'");
        var backbones = MtlMoe.Model.Net.ModelConfig.Backbones;
        if (!backbones.Contains(s.Backbone)) throw new UsageException($"--backbone must be one of {string.Join(", ", backbones)}, got '{s.Backbone}'");
        if (s.Device is not ("auto" or "cpu" or "cuda") && !s.Device.StartsWith("cuda:", StringComparison.Ordinal)) throw new UsageException($"--device must be auto, cpu or cuda, got '{s.Device}'");
        if (s.Optimizer is not ("sgd" or "adamw")) throw new UsageException($"--optimizer must be sgd or adamw, got '{s.Optimizer}'");
        if (s.ExpertDepth is not ("head" or "layer4")) throw new UsageException($"--expert-depth must be head or layer4, got '{s.ExpertDepth}'");
        if (s.Experts < 1) throw new UsageException($"--experts must be at least 1, got {s.Experts}");
        if (s.K < 1 || s.K > s.Experts) throw new UsageException($"--k must be between 1 and --experts ({s.Experts}), got {s.K}");
        if (s.Epochs < 1) throw new UsageException($"--epochs must be at least 1, got {s.Epochs}");
        if (s.Batch < 1) throw new UsageException($"--batch must be at least 1, got {s.Batch}");
        if (s.Lr <= 0) throw new UsageException($"--lr must be positive, got {s.Lr}");
        if (s.Res < 32) throw new UsageException($"--res must be at least 32, got {s.Res}");
        if (s.Width <= 0 || s.Width > 4) throw new UsageException($"--width must be in (0, 4], got {s.Width}");
        if (s.Jitter is < 0 or >= 1) throw new UsageException($"--jitter must be in [0, 1), got {s.Jitter}");
        if (s.Hidden < 1) throw new UsageException($"--hidden must be at least 1, got {s.Hidden}");
        if (s.Dropout is < 0 or >= 1) throw new UsageException($"--dropout must be in [0, 1), got {s.Dropout}");
        if (s.LabelSmoothing is < 0 or >= 1) throw new UsageException($"--label-smoothing must be in [0, 1), got {s.LabelSmoothing}");
        if (s.Freeze != "none" && !MtlMoe.Model.Backbone.ResNet.StageNames.Contains(s.Freeze)) throw new UsageException($"--freeze must be none, {string.Join(", ", MtlMoe.Model.Backbone.ResNet.StageNames)}, got '{s.Freeze}'");
        if (s.BackboneLr is < 0 or > 10) throw new UsageException($"--backbone-lr must be in [0, 10], got {s.BackboneLr}");
        if (s.Seeds is < 1 or > 100) throw new UsageException($"--seeds must be between 1 and 100, got {s.Seeds}");
        if (s.Seeds > 1 && s.Command != "ablate") throw new UsageException("--seeds is an ablate option (train takes one --seed)");
        if (s.Threads < 0 || s.Workers < 0) throw new UsageException("--threads and --workers must not be negative");
        if (s.Command == "predict" && (s.Inputs.Count == 0 || s.Checkpoint is null)) throw new UsageException("predict needs IMAGE|DIR arguments and --checkpoint FILE");
        if (s.Command == "eval" && s.Checkpoint is null && s.Resume is null) throw new UsageException("eval needs --checkpoint FILE");
        if (s.Data is not null && !Directory.Exists(s.Data)) throw new UsageException($"--data folder '{s.Data}' does not exist");
        if (s.Resume is not null && !Directory.Exists(s.Resume)) throw new UsageException($"--resume folder '{s.Resume}' does not exist");
    }
}
