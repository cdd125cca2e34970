using MtlMoe.Engine.IO;
using MtlMoe.Model.Training;

namespace MtlMoe.Tests.Training;

/// <summary>--resume continues bit for bit; the checkpoint files are written atomically and checked for agreement.</summary>
public class ResumeTests
{
    private static long[] Bits(IEnumerable<double> xs) => xs.Select(BitConverter.DoubleToInt64Bits).ToArray();

    [Test]
    public void InterruptedMidEpochThenResumedMatchesAnUninterruptedRunBitForBit()
    {
        var config = TrainingFixtures.TinyConfig("mtl-moe");
        var options = TrainingFixtures.TinyOptions(epochs: 2);

        // A: two epochs straight.
        string dirA = TrainingFixtures.NewTempDir();
        var (netA, trainerA) = TrainingFixtures.NewTrainer(config, options, dirA);
        TrainResult a;
        using (netA) using (trainerA) a = trainerA.Run();
        int steps = trainerA.StepsPerEpoch;
        Assert.That(trainerA.StepLosses, Has.Count.EqualTo(2 * steps));

        // B: cancelled in the middle of epoch 2 …
        string dirB = TrainingFixtures.NewTempDir();
        using var cts = new CancellationTokenSource();
        var (netB, trainerB) = TrainingFixtures.NewTrainer(config, options, dirB, new SilentProgress(cancelAtEpoch: 2, cancelAtBatch: 1, cts));
        using (netB) using (trainerB)
        {
            Assert.Throws<OperationCanceledException>(() => trainerB.Run(cts.Token));
            Assert.That(Bits(trainerB.StepLosses), Is.EqualTo(Bits(trainerA.StepLosses.Take(steps + 1))));
        }
        // … then resumed by a fresh process-like trainer (new net, different init seed: everything must come from the files).
        var (netC, trainerC) = TrainingFixtures.NewTrainer(config, options, dirB, seed: 999);
        TrainResult c;
        using (netC) using (trainerC)
        {
            trainerC.Resume(dirB);
            Assert.That(trainerC.EpochsDone, Is.EqualTo(1));
            c = trainerC.Run();
            Assert.That(Bits(trainerC.StepLosses), Is.EqualTo(Bits(trainerA.StepLosses.Skip(steps))), "epoch-2 losses after resume");
        }
        Assert.That(c.History, Has.Count.EqualTo(2));
        Assert.That(Bits(c.History.Select(m => m.TestLoss)), Is.EqualTo(Bits(a.History.Select(m => m.TestLoss))));
        Assert.That(Bits(c.History.Select(m => m.TrainLoss)), Is.EqualTo(Bits(a.History.Select(m => m.TrainLoss))));
        Assert.That(File.ReadAllBytes(Path.Combine(dirB, RunFiles.Last)), Is.EqualTo(File.ReadAllBytes(Path.Combine(dirA, RunFiles.Last))));
        var csv = File.ReadAllLines(Path.Combine(dirB, RunFiles.Metrics));
        Assert.That(csv, Has.Length.EqualTo(3));
        Assert.That(csv[0], Does.StartWith("epoch,train_loss").And.EndWith("load_expert0,load_expert1,load_expert2"));
    }

    [Test]
    public void ACrashWhileWritingLeavesTheOldCheckpointIntact()
    {
        string dir = TrainingFixtures.NewTempDir();
        string path = Path.Combine(dir, RunFiles.Last);
        using var net = new MtlMoe.Model.Net.MtlMoeNet(TrainingFixtures.TinyConfig(), seed: 1);
        RunFiles.SaveModel(path, net, ["a", "b", "c", "d"], epoch: 1);
        var before = File.ReadAllBytes(path);

        // A tensor that fails when its bytes are written: the header and earlier tensors are already in the temp file.
        var state = new SortedDictionary<string, MtlMoe.Engine.Tensor>(net.StateDict(), StringComparer.Ordinal);
        var doomed = MtlMoe.Engine.DisposeScope.Outside(() => MtlMoe.Engine.Tensor.Zeros([4]));
        doomed.Dispose();
        var dict = state.ToDictionary(kv => kv.Key, kv => kv.Value);
        dict["zz.last"] = doomed;
        Assert.That(() => Safetensors.Save(path, dict), Throws.InstanceOf<Exception>());

        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Directory.GetFiles(dir), Is.EqualTo(new[] { path }), "no temp file left behind");
        var (loaded, classes, epoch) = RunFiles.LoadModel(path);
        using (loaded) Assert.That((classes.Length, epoch), Is.EqualTo((4, 1)));
    }

    [Test]
    public void NaNLossStopsWithEpochAndBatchAndKeepsTheLastCheckpoint()
    {
        string dir = TrainingFixtures.NewTempDir();
        var (net, trainer) = TrainingFixtures.NewTrainer(TrainingFixtures.TinyConfig("mtl"), TrainingFixtures.TinyOptions(epochs: 2), dir);
        byte[]? afterEpoch1 = null;
        using (net) using (trainer)
        {
            trainer.BeforeStep = (epoch, batch) =>
            {
                if (epoch == 1 && batch == 0) afterEpoch1 = File.ReadAllBytes(Path.Combine(dir, RunFiles.Last));
                if (epoch == 1 && batch == 1) net.Backbone.StateDict()["conv1.weight"].Fill(double.NaN);
            };
            var e = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
            Assert.That(e!.Message, Does.Contain("NaN at epoch 2, batch 2/").And.Contain("epoch 1) is intact"));
        }
        Assert.That(File.ReadAllBytes(Path.Combine(dir, RunFiles.Last)), Is.EqualTo(afterEpoch1));
        var (loaded, _, epoch) = RunFiles.LoadModel(Path.Combine(dir, RunFiles.Last));
        using (loaded)
        {
            Assert.That(epoch, Is.EqualTo(1));
            Assert.That(loaded.Backbone.StateDict()["conv1.weight"].ToFloatArray().All(float.IsFinite));
        }
    }
}
