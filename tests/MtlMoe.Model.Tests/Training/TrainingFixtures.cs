using MtlMoe.Engine;
using MtlMoe.Model.Data;
using MtlMoe.Model.IO;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;

namespace MtlMoe.Tests.Training;

/// <summary>Tiny models, data sets and a silent progress sink for the training tests.</summary>
internal static class TrainingFixtures
{
    /// <summary>
    /// 4 classes × 32 images at 48 px, half train, in memory: the first species of each of the four synthetic
    /// families (different body colours), so that a few seconds of training can tell them apart.
    /// </summary>
    public static readonly Lazy<CubDataset> Tiny = new(() =>
    {
        var all = SyntheticBirds.InMemory(new SyntheticBirdsOptions { Classes = 16, ImagesPerClass = 32, Width = 48, Height = 48, Seed = 5 });
        int[] keep = [0, 5, 10, 15];
        var samples = all.Samples.Where(s => keep.Contains(s.ClassIndex)).Select(s => s with { ClassIndex = Array.IndexOf(keep, s.ClassIndex) }).ToList();
        return new CubDataset(keep.Select(c => all.ClassNames[c]).ToList(), samples);
    });

    /// <summary>A quarter of <see cref="Tiny"/> (16 train, 16 test images): for tests that run many short trainings.</summary>
    public static readonly Lazy<CubDataset> Mini = new(() =>
    {
        var t = Tiny.Value;
        return new CubDataset(t.ClassNames, t.Train.Take(16).Concat(t.Test.Take(16)).ToList());
    });

    /// <summary>A tiny model config: ResNet-18 at width 1/8 on 32-px crops.</summary>
    public static ModelConfig TinyConfig(string variant = "mtl-moe", string backbone = "resnet18", string expertDepth = "head", int classes = 4) => new()
    {
        Variant = ChoiceNames.Parse<ModelVariant>(variant, "variant"), Backbone = ChoiceNames.Parse<BackboneKind>(backbone, "backbone"),
        Width = 0.125, Classes = classes, Experts = 3, K = 2,
        ExpertDepth = ChoiceNames.Parse<ExpertDepth>(expertDepth, "expert depth"), Resolution = 32, Hidden = 32, Dropout = 0.2,
    };

    /// <summary>Trainer options for the tiny set.</summary>
    public static TrainerOptions TinyOptions(int epochs = 2) => new()
    {
        Epochs = epochs, BatchSize = 8, Lr = 0.05, WarmupEpochs = 0.5, Crop = 32, Resize = 36, Workers = 1, Seed = 3, Device = Device.Cpu,
    };

    /// <summary>A fresh empty temp folder.</summary>
    public static string NewTempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "mtlmoe-training-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>A trainer over the tiny set for a fresh net built from <paramref name="config"/>.</summary>
    public static (MtlMoeNet Net, Trainer Trainer) NewTrainer(ModelConfig config, TrainerOptions options, string runDir, ITrainingProgress? progress = null, ulong seed = 9, CubDataset? data = null)
    {
        Rng.ManualSeed(1);
        var net = new MtlMoeNet(config, seed);
        var trainer = new Trainer(net, data ?? Tiny.Value, options, runDir, "{}", progress ?? new SilentProgress());
        return (net, trainer);
    }
}

/// <summary>Progress that records messages and can cancel at a chosen batch.</summary>
internal sealed class SilentProgress(int cancelAtEpoch = -1, int cancelAtBatch = -1, CancellationTokenSource? cancel = null) : ITrainingProgress
{
    public List<string> Messages { get; } = new();
    public void BeginRun(string title, int epochs, int batchesPerEpoch) { }
    public void Batch(int epoch, int batch, double loss, double top1, double imagesPerSecond)
    {
        if (epoch == cancelAtEpoch && batch == cancelAtBatch) cancel?.Cancel();
    }
    public void Evaluating(int epoch) { }
    public void EndEpoch(EpochMetrics metrics) { }
    public void Message(string text) => Messages.Add(text);
    public void Dispose() { }
}
