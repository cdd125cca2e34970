using MtlMoe.Model.Training;

namespace MtlMoe.Tests.Training;

/// <summary>A short real training run must learn something.</summary>
public class EndToEndTests
{
    [Test]
    public void ShortTrainingRunBeatsChanceAndWritesTheRunFolder()
    {
        string dir = TrainingFixtures.NewTempDir();
        // 16 epochs: at 8 the best test accuracy of seeds 3..7 ranged 28..47 % and a rounding-level change to the conv
        // (another summation order) moved seed 3 from 47 % to 34 %; at 16 the same sweep gave 38..52 % (old order) and 42..50 % (new).
        var options = TrainingFixtures.TinyOptions(epochs: 16) with { BatchSize = 8, Crop = 48, Resize = 48, Optimizer = OptimizerKind.AdamW, Lr = 2e-3, WeightDecay = 1e-4, WarmupEpochs = 1 };
        var (net, trainer) = TrainingFixtures.NewTrainer(TrainingFixtures.TinyConfig("mtl-moe") with { Resolution = 48, Width = 0.25 }, options, dir);
        TrainResult r;
        using (net) using (trainer) r = trainer.Run();
        var first = r.History[0];
        var last = r.History[^1];
        TestContext.Out.WriteLine(string.Join("\n", r.History.Select(m => $"{m.Epoch}: train {m.TrainLoss:F3} {m.TrainTop1:P0} test {m.TestTop1:P0} IoU {m.TestMeanIoU:F3}")));
        Assert.That(last.TrainLoss, Is.LessThan(first.TrainLoss), "training loss must fall");
        Assert.That(r.BestTop1, Is.GreaterThan(0.40), "4 classes: chance is 25% (64 test images: 40% is almost 3 sigma above it)");
        Assert.That(last.TestMeanIoU, Is.GreaterThan(0.5));
        Assert.That(r.Final.Samples, Has.Count.EqualTo(TrainingFixtures.Tiny.Value.Test.Count));
        Assert.That(r.Final.Samples.All(s => s.Experts.Length == 2 && s.PredictedBox is not null));
        foreach (var f in new[] { RunFiles.Config, RunFiles.Metrics, RunFiles.Last, RunFiles.Best, RunCheckpoints.Pointer })
            Assert.That(File.Exists(Path.Combine(dir, f)), f);
        foreach (var f in new[] { RunCheckpoints.ModelFile, RunCheckpoints.OptimizerFile, RunCheckpoints.StateFile, RunCheckpoints.ConfigFile, RunCheckpoints.BestFile })
            Assert.That(File.Exists(Path.Combine(dir, "ckpt-0016", f)), f);
    }
}
