using System.Globalization;
using MtlMoe.Model.IO;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;

namespace MtlMoe.Train.Cli;

/// <summary>Thrown for a bad command line; the message is one line for the user.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Parses <c>[command] [--option value | --flag]… [inputs…]</c> into <see cref="TrainSettings"/>. The options, their
/// help and which command takes which are in <see cref="OptionTable"/>; <c>@FILE</c> arguments are replaced by the
/// file's whitespace-separated words (lines starting with # are comments).
/// </summary>
/// <remarks>
/// System.CommandLine 2.0 was considered (it gives help, response files and completion): its stock messages
/// ("Cannot parse argument 'x' for option '--epochs' as expected type 'System.Int32'.", two errors for one mistyped
/// option, choices listed over several lines) are less clear than these one-liners, keeping ours means a custom
/// parser per option, and its first parse took about 100 ms. So the parser stays hand-written and small.
/// </remarks>
public static class CommandLine
{
    /// <summary>The line printed under an option error.</summary>
    public const string ShortUsage = "usage: dotnet run --project tools/Train -- [train|eval|predict|ablate] [options]  (--help lists them)";

    /// <summary>
    /// The help the arguments ask for (<c>--help</c>, <c>-h</c> or <c>help [COMMAND]</c>), or null: then run the command.
    /// </summary>
    public static string? HelpText(IReadOnlyList<string> args)
    {
        args = ExpandResponseFiles(args);
        if (args.Count > 0 && args[0] == "help")
            return args.Count == 1 ? OptionTable.GeneralHelp() : OptionTable.CommandHelp(ParseCommand(args[1]));
        if (!args.Any(a => a is "--help" or "-h")) return null;
        return args.Count > 0 && !args[0].StartsWith('-') ? OptionTable.CommandHelp(ParseCommand(args[0])) : OptionTable.GeneralHelp();
    }

    private static CommandKind ParseCommand(string word) => ChoiceNames.TryParse<CommandKind>(word, out var c) ? c
        : throw new UsageException($"unknown command '{word}' (expected {string.Join(", ", ChoiceNames.Names<CommandKind>())})");

    /// <summary>Replaces every <c>@FILE</c> argument by the words of FILE.</summary>
    public static IReadOnlyList<string> ExpandResponseFiles(IReadOnlyList<string> args)
    {
        if (!args.Any(a => a.StartsWith('@'))) return args;
        var result = new List<string>();
        foreach (var a in args)
        {
            if (!a.StartsWith('@') || a.Length == 1) { result.Add(a); continue; }
            string path = a[1..];
            if (!File.Exists(path)) throw new UsageException($"response file '{path}' does not exist");
            foreach (var line in File.ReadLines(path))
                if (!line.TrimStart().StartsWith('#'))
                    result.AddRange(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        }
        return result;
    }

    /// <summary>Parses the arguments; throws <see cref="UsageException"/> with one clear line on any error.</summary>
    public static TrainSettings Parse(IReadOnlyList<string> args)
    {
        args = ExpandResponseFiles(args);
        var s = new TrainSettings();
        int i = 0;
        if (args.Count > 0 && !args[0].StartsWith('-'))
        {
            s = s with { Command = ParseCommand(args[0]) };
            i = 1;
        }
        string command = s.Command.ToChoiceName();
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        var inputs = new List<string>();
        for (; i < args.Count; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                if (s.Command != CommandKind.Predict) throw new UsageException($"unexpected argument '{a}' (options look like --name value)");
                inputs.Add(a);
                continue;
            }
            var name = a[2..];
            var spec = OptionTable.Find(name) ?? throw new UsageException($"unknown option --{name}");
            if (!OptionTable.Applies(spec, s.Command)) throw new UsageException($"--{name} does not apply to {command} ('{command} --help' lists its options)");
            if (spec.IsFlag) { values[name] = null; continue; }
            if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"option --{name} needs a value");
            values[name] = args[++i];
        }

        if (values.TryGetValue("preset", out var preset)) s = ApplyPreset(s, preset!);
        foreach (var (name, value) in values) s = Apply(s, name, value);
        s = PretrainedChoice.Resolve(s, values);
        if (inputs.Count > 0) s = s with { Inputs = inputs };
        s = s with { Given = values.Keys.ToArray() };
        Validate(s);
        return s;
    }

    /// <summary>
    /// The standard CUB recipe: ResNet-50, resize 512, crop 448, flip and colour jitter 0.4, SGD momentum 0.9,
    /// lr 0.01 with warm-up and cosine, weight decay 5e-4, batch 16.
    /// </summary>
    private static TrainSettings ApplyPreset(TrainSettings s, string preset) => preset switch
    {
        "cub448" => s with { Backbone = BackboneKind.ResNet50, Width = 1.0, Res = 448, Resize = 512, Optimizer = OptimizerKind.Sgd, Lr = 0.01, WeightDecay = 5e-4, Batch = 16, Epochs = 50, WarmupEpochs = 2, Jitter = 0.4, Tf32 = true },
        "none" => s,
        _ => throw new UsageException($"unknown preset '{preset}' (expected cub448)"),
    };

    private static TrainSettings Apply(TrainSettings s, string name, string? v) => name switch
    {
        "preset" => s with { Preset = v },
        "data" => s with { Data = v },
        "device" => s with { Device = DeviceRequest.TryParse(v, out var d) ? d : throw new UsageException($"--device must be auto, cpu, cuda or cuda:N, got '{v}'") },
        "backbone" => s with { Backbone = Choice<BackboneKind>(name, v) },
        "width" => s with { Width = Double(name, v) },
        "variant" => s with { Variant = Choice<ModelVariant>(name, v) },
        "experts" => s with { Experts = Int(name, v) },
        "k" => s with { K = Int(name, v) },
        "expert-depth" => s with { ExpertDepth = Choice<ExpertDepth>(name, v) },
        "epochs" => s with { Epochs = Int(name, v) },
        "batch" => s with { Batch = Int(name, v) },
        "lr" => s with { Lr = Double(name, v) },
        "optimizer" => s with { Optimizer = Choice<OptimizerKind>(name, v) },
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
        "freeze" => s with { Freeze = Choice<FreezeThrough>(name, v) },
        "backbone-lr" => s with { BackboneLr = Double(name, v) },
        "init-experts-from" => s with { InitExpertsFrom = v },
        "checkpoint" => s with { Checkpoint = v },
        "annotate" => s with { Annotate = v },
        "synthetic-classes" => s with { SyntheticClasses = Int(name, v) },
        "synthetic-images" => s with { SyntheticImagesPerClass = Int(name, v) },
        "synthetic-size" => s with { SyntheticSize = Int(name, v) },
        "skip-bad" => s with { SkipBad = true },
        "max-image-pixels" => s with { MaxImagePixels = long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var px) && px > 0 ? px : throw new UsageException($"--max-image-pixels expects a positive integer, got '{v}'") },
        "max-batches" => s with { MaxBatches = Int(name, v) },
        "plain" => s with { Plain = true },
        "tf32" => s with { Tf32 = true },
        "amp" => s with { Amp = Choice<AmpMode>(name, v) },
        "debug" => s with { Debug = true },
        "json" => s with { Json = true },
        "help" => s,
        _ => throw new InvalidOperationException($"option --{name} is in the table but not handled"),
    };

    private static T Choice<T>(string name, string? v) where T : struct, Enum
        => ChoiceNames.TryParse<T>(v, out var x) ? x : throw new UsageException($"--{name} must be one of {string.Join(", ", ChoiceNames.Names<T>())}, got '{v}'");

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
        if (s.BackboneLr is < 0 or > 10) throw new UsageException($"--backbone-lr must be in [0, 10], got {s.BackboneLr}");
        if (s.Seeds is < 1 or > 100) throw new UsageException($"--seeds must be between 1 and 100, got {s.Seeds}");
        if (s.Threads < 0 || s.Workers < 0) throw new UsageException("--threads and --workers must not be negative");
        if (s.Command == CommandKind.Predict && (s.Inputs.Count == 0 || s.Checkpoint is null)) throw new UsageException("predict needs IMAGE|DIR arguments and --checkpoint FILE");
        if (s.Command == CommandKind.Eval && s.Checkpoint is null && s.Resume is null) throw new UsageException("eval needs --checkpoint FILE (or --resume RUN_DIR)");
        if (s.Data is not null && !Directory.Exists(s.Data)) throw new UsageException($"--data folder '{s.Data}' does not exist");
        if (s.Resume is not null && !Directory.Exists(s.Resume)) throw new UsageException($"--resume folder '{s.Resume}' does not exist");
    }
}
