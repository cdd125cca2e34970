using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cuda;
using MtlMoe.Model.Data;
using MtlMoe.Model.IO;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;

namespace MtlMoe.Train.Commands;

/// <summary>What every command shares: device choice, data, model config, run folders and config.json.</summary>
public static class RunSetup
{
    /// <summary>The cache folder (under the current directory): the synthetic set, the converted ImageNet weights.</summary>
    public static string CacheDir => ".cache";

    /// <summary>Where the synthetic set is generated (under the current directory).</summary>
    public static string SyntheticCacheDir => Path.Combine(CacheDir, "synthetic-birds");

    /// <summary>Picks the device: auto = CUDA when the driver and a CUDA backend are present, else the CPU; says why.</summary>
    public static (Device Device, string Why) ResolveDevice(DeviceRequest requested)
    {
        if (requested.Kind == DeviceKind.Cpu) return (Device.Cpu, "requested");
        bool cudaOk = CudaRuntime.IsAvailable(out var reason);
        if (requested.Kind == DeviceKind.Auto) return cudaOk ? (Device.Cuda(0), "a usable GPU was found") : (Device.Cpu, $"no usable GPU: {reason}");
        if (!cudaOk) throw new DeviceUnavailableException($"--device {requested}: CUDA is not usable ({reason})");
        return (requested.Device, "requested");
    }

    /// <summary>
    /// Applies --tf32 when the run is on a GPU (the CPU always computes in full FP32): installs a CUDA backend with it for
    /// the rest of the command (the calling flow).
    /// </summary>
    public static void ApplyMath(TrainSettings s, Device device)
    {
        if (device.Type == DeviceType.Cuda)
            BackendRegistry.Use(((CudaBackend)BackendRegistry.Get(device)).With(new CudaBackendOptions { AllowTf32 = s.Tf32 }));
    }

    /// <summary>Applies --threads: installs a CPU backend with that many threads for the rest of the command (the calling flow).</summary>
    public static void ApplyThreads(TrainSettings s)
    {
        if (s.Threads > 0) BackendRegistry.Use(new CpuBackend(CpuBackendOptions.FromEnvironment() with { Threads = s.Threads }));
    }

    /// <summary>The synthetic set's options for these settings (three quarters of the images train: steps are what a from-scratch model lacks).</summary>
    public static SyntheticBirdsOptions SyntheticOptions(TrainSettings s) => new()
    {
        Classes = s.SyntheticClasses, ImagesPerClass = s.SyntheticImagesPerClass, Width = s.SyntheticSize, Height = s.SyntheticSize,
        TrainFraction = 0.75,
    };

    /// <summary>Loads --data, or generates (once) and loads the synthetic set.</summary>
    public static CubDataset LoadData(TrainSettings s, Action<string>? say = null, CancellationToken cancel = default)
    {
        if (s.Data is not null)
        {
            // Metadata problems name images.txt etc.; the user sees them under the folder they gave.
            var options = new CubValidationOptions
            {
                SkipBad = s.SkipBad, DecodeAll = true, Limits = DecodeLimitsOf(s),
                Progress = (done, total) => say?.Invoke($"checking images: {done}/{total} decoded"), Cancel = cancel,
            };
            CubDataset data;
            try { data = CubDataset.Load(s.Data, options); }
            catch (CubFormatException e) { throw e.UnderRoot(CubDataset.ResolveRoot(s.Data)); }
            foreach (var reason in data.SkipReasons) say?.Invoke($"skipped: {reason}");
            return data;
        }
        var opts = SyntheticOptions(s);
        string dir = Path.Combine(SyntheticCacheDir, opts.CacheKey);
        if (!Directory.Exists(dir)) say?.Invoke($"generating the synthetic birds set ({opts.Classes} classes × {opts.ImagesPerClass} images, {opts.Width}px) into {Path.GetFullPath(dir)} …");
        var root = SyntheticBirds.EnsureGenerated(SyntheticCacheDir, opts);
        return CubDataset.Load(root);
    }

    /// <summary>The decoding limits for these settings (--max-image-pixels).</summary>
    public static DecodeLimits DecodeLimitsOf(TrainSettings s) => new() { MaxPixels = s.MaxImagePixels, LimitHint = "; --max-image-pixels raises it" };

    /// <summary>Writes skipped.txt (one line per image or line left out under --skip-bad) into the run folder and says how many.</summary>
    public static void ReportSkipped(CubDataset data, string runDir, Action<string> say)
    {
        if (data.SkippedCount == 0) return;
        string path = Path.Combine(runDir, RunFiles.Skipped);
        AtomicFile.WriteAllText(path, string.Join("\n", data.SkipReasons) + "\n");
        say($"--skip-bad: left out {data.SkippedCount} image(s) or line(s), {data.Samples.Count} images remain; the list is in {path}");
    }

    /// <summary>The resize before the crop.</summary>
    public static int ResizeOf(TrainSettings s) => s.Resize > 0 ? s.Resize : CubTransforms.ResizeFor(s.Res);

    /// <summary>The model the settings describe for <paramref name="classes"/> classes.</summary>
    public static ModelConfig ModelConfigOf(TrainSettings s, int classes) => new()
    {
        Variant = s.Variant, Backbone = s.Backbone, Width = s.Width, Classes = classes, Experts = s.Experts, K = s.K,
        ExpertDepth = s.ExpertDepth, Resolution = s.Res, LearnedWeighting = s.LearnedWeighting, Hidden = s.Hidden, Dropout = s.Dropout, ZeroInitResidual = s.ZeroInitResidual,
    };

    /// <summary>The trainer's options for these settings on <paramref name="device"/>.</summary>
    public static TrainerOptions TrainerOptionsOf(TrainSettings s, Device device) => new()
    {
        Epochs = s.Epochs, BatchSize = s.Batch, Lr = s.Lr, Optimizer = s.Optimizer, WeightDecay = s.WeightDecay,
        WarmupEpochs = s.WarmupEpochs, LabelSmoothing = s.LabelSmoothing, LambdaLoc = s.LambdaLoc, Seed = s.Seed,
        Workers = s.Workers, MaxBatches = s.MaxBatches, Crop = s.Res, Resize = ResizeOf(s), ColorJitter = s.Jitter, Device = device,
        MaxImagePixels = s.MaxImagePixels,
        Freeze = s.Freeze, BackboneLrScale = s.BackboneLr, Amp = s.Amp,
    };

    /// <summary>A new run folder name: runs/&lt;timestamp&gt;-&lt;variant&gt;.</summary>
    public static string DefaultRunDir(TrainSettings s) =>
        Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-" + s.Variant.ToChoiceName());

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>config.json: the settings (what --resume re-reads), the model and trainer options, the data.</summary>
    public static string ConfigJson(TrainSettings s, ModelConfig model, TrainerOptions trainer, CubDataset data)
    {
        var o = new JsonObject
        {
            ["settings"] = JsonSerializer.SerializeToNode(s, Json),
            ["model"] = JsonSerializer.SerializeToNode(model, Json),
            ["trainer"] = JsonSerializer.SerializeToNode(trainer, Json),
            ["data"] = new JsonObject
            {
                ["root"] = data.Root, ["classes"] = data.NumClasses, ["train"] = data.Train.Count, ["test"] = data.Test.Count,
                ["synthetic"] = s.Data is null,
            },
        };
        return o.ToJsonString(Json);
    }

    /// <summary>The settings stored in a run folder's config.json (the committed checkpoint's, when there is one).</summary>
    public static TrainSettings ReadSettings(string runDir)
    {
        var path = new RunCheckpoints(runDir, DiskFileOps.Instance).Committed()?.Config ?? Path.Combine(runDir, RunFiles.Config);
        if (!File.Exists(path)) throw new FileProblemException(path, 0, $"not found (is {runDir} a run folder?)");
        return FileErrors.About(path, () =>
        {
            var node = JsonNode.Parse(File.ReadAllText(path))?["settings"] ?? throw new FileProblemException(path, 0, "has no 'settings'");
            return node.Deserialize<TrainSettings>(Json) ?? throw new FileProblemException(path, 0, "'settings' is empty");
        });
    }
}
