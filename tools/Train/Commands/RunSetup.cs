using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cuda;
using MtlMoe.Model.Data;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;

namespace MtlMoe.Train.Commands;

/// <summary>What every command shares: device choice, data, model config, run folders and config.json.</summary>
public static class RunSetup
{
    /// <summary>Where the synthetic set is generated (under the current directory).</summary>
    public static string SyntheticCacheDir => Path.Combine(".cache", "synthetic-birds");

    /// <summary>Picks the device: auto = CUDA when the driver and a CUDA backend are present, else the CPU; says why.</summary>
    public static (Device Device, string Why) ResolveDevice(string requested)
    {
        bool cudaOk = CudaRuntime.IsAvailable(out var reason);
        if (requested == "cpu") return (Device.Cpu, "requested");
        if (requested == "auto") return cudaOk ? (Device.Cuda(0), "a usable GPU was found") : (Device.Cpu, $"no usable GPU: {reason}");
        if (!cudaOk) throw new InvalidOperationException($"--device {requested}: CUDA is not usable ({reason})");
        return (Device.Parse(requested), "requested");
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
    public static CubDataset LoadData(TrainSettings s, Action<string>? say = null)
    {
        if (s.Data is not null) return CubDataset.Load(s.Data, new CubLoadOptions { SkipBad = s.SkipBad });
        var opts = SyntheticOptions(s);
        string dir = Path.Combine(SyntheticCacheDir, opts.CacheKey);
        if (!Directory.Exists(dir)) say?.Invoke($"generating the synthetic birds set ({opts.Classes} classes × {opts.ImagesPerClass} images, {opts.Width}px) into {Path.GetFullPath(dir)} …");
        var root = SyntheticBirds.EnsureGenerated(SyntheticCacheDir, opts);
        return CubDataset.Load(root);
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
        Workers = s.Workers, MaxBatches = s.MaxBatches, Crop = s.Res, Resize = ResizeOf(s), ColorJitter = s.Jitter, Device = device.ToString(),
    };

    /// <summary>A new run folder name: runs/&lt;timestamp&gt;-&lt;variant&gt;.</summary>
    public static string DefaultRunDir(TrainSettings s) =>
        Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-" + s.Variant);

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

    /// <summary>The settings stored in a run folder's config.json.</summary>
    public static TrainSettings ReadSettings(string runDir)
    {
        var path = Path.Combine(runDir, RunFiles.Config);
        if (!File.Exists(path)) throw new InvalidOperationException($"{path} not found (is {runDir} a run folder?)");
        var node = JsonNode.Parse(File.ReadAllText(path))?["settings"] ?? throw new InvalidDataException($"{path} has no 'settings'");
        return node.Deserialize<TrainSettings>(Json) ?? throw new InvalidDataException($"{path}: bad settings");
    }
}
