using MtlMoe.Model.IO;
using MtlMoe.Model.Training;

namespace MtlMoe.Tests.Training;

/// <summary>
/// Issue 18, item 2: an epoch's checkpoint is one atomic unit. A crash after any file operation of the save (or in
/// the middle of a write) leaves a folder that --resume continues so that the run ends byte-identical to one that
/// was never interrupted, with no temporaries left behind.
/// </summary>
public class CheckpointSetTests
{
    private static TrainerOptions Options => TrainingFixtures.TinyOptions(epochs: 3) with { MaxBatches = 2 };
    private static MtlMoe.Model.Net.ModelConfig Config => TrainingFixtures.TinyConfig("mtl-moe");
    private static MtlMoe.Model.Data.CubDataset Mini => TrainingFixtures.Mini.Value;

    private static long[] Bits(IEnumerable<double> xs) => xs.Select(BitConverter.DoubleToInt64Bits).ToArray();

    /// <summary>Three epochs straight.</summary>
    private static readonly Lazy<(string Dir, TrainResult Result)> Reference = new(() =>
    {
        string dir = TrainingFixtures.NewTempDir();
        var (net, trainer) = TrainingFixtures.NewTrainer(Config, Options, dir, data: Mini);
        using (net) using (trainer) return (dir, trainer.Run());
    });

    /// <summary>The same run stopped during epoch 2: its folder commits epoch 1.</summary>
    private static readonly Lazy<string> AfterEpoch1 = new(() =>
    {
        string dir = TrainingFixtures.NewTempDir();
        using var cts = new CancellationTokenSource();
        var (net, trainer) = TrainingFixtures.NewTrainer(Config, Options, dir, new SilentProgress(cancelAtEpoch: 2, cancelAtBatch: 1, cts), data: Mini);
        using (net) using (trainer) Assert.Throws<OperationCanceledException>(() => trainer.Run(cts.Token));
        return dir;
    });

    private static string CopyOf(string src)
    {
        string dst = TrainingFixtures.NewTempDir();
        foreach (var f in Directory.GetFiles(src, "*", SearchOption.AllDirectories))
        {
            var t = Path.Combine(dst, Path.GetRelativePath(src, f));
            Directory.CreateDirectory(Path.GetDirectoryName(t)!);
            File.Copy(f, t);
        }
        return dst;
    }

    private static string[] Listing(string dir) => Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories)
        .Select(p => Path.GetRelativePath(dir, p)).Order(StringComparer.Ordinal).ToArray();

    /// <summary>Continues <paramref name="dir"/> to the end in a fresh trainer (another init seed: all state must come from the files).</summary>
    private static TrainResult ResumeToEnd(string dir)
    {
        var (net, trainer) = TrainingFixtures.NewTrainer(Config, Options, dir, seed: 999, data: Mini);
        using (net) using (trainer)
        {
            trainer.Resume(dir);
            return trainer.Run();
        }
    }

    /// <summary>Resumes the epoch-1 folder and saves epoch 2 through <paramref name="ops"/>, armed for that save only.</summary>
    private static void RunEpoch2Through(string dir, CrashingFileOps ops)
    {
        var (net, trainer) = TrainingFixtures.NewTrainer(Config, Options, dir, data: Mini);
        using (net) using (trainer)
        {
            trainer.FileOps = ops;
            trainer.Resume(dir);
            trainer.BeforeStep = (epoch, _) => ops.Armed = epoch == 1;
            trainer.Run();
        }
    }

    [Test]
    public void ACrashAfterAnyFileOperationOfTheSaveResumesByteIdentically()
    {
        var (refDir, reference) = Reference.Value;
        var counter = new CrashingFileOps(int.MaxValue, torn: false);
        RunEpoch2Through(CopyOf(AfterEpoch1.Value), counter);
        int ops = counter.Count;
        TestContext.Out.WriteLine($"epoch-2 save: {ops} operations: {string.Join("; ", counter.Log)}");
        Assert.That(ops, Is.GreaterThanOrEqualTo(10), "model, optimizer, best, config, state, rename, pointer, copies, old-set removal, metrics");

        var failures = new List<string>();
        foreach (bool torn in new[] { false, true })
            for (int k = 1; k <= ops; k++)
            {
                // A torn operation differs from a finished one only for writes and copies.
                if (torn && !(counter.Log[k - 1].StartsWith("write") || counter.Log[k - 1].StartsWith("copy"))) continue;
                string what = $"{(torn ? "torn " : "")}crash at op {k} ({counter.Log[k - 1]})";
                string dir = CopyOf(AfterEpoch1.Value);
                var crash = new CrashingFileOps(k, torn);
                try { RunEpoch2Through(dir, crash); failures.Add($"{what}: no crash"); continue; }
                catch (SimulatedCrashException) { }
                var resumed = ResumeToEnd(dir);
                if (!File.ReadAllBytes(Path.Combine(dir, RunFiles.Last)).SequenceEqual(File.ReadAllBytes(Path.Combine(refDir, RunFiles.Last))))
                    failures.Add($"{what}: last.safetensors differs");
                if (!File.ReadAllBytes(Path.Combine(dir, RunFiles.Best)).SequenceEqual(File.ReadAllBytes(Path.Combine(refDir, RunFiles.Best))))
                    failures.Add($"{what}: best.safetensors differs");
                if (!Bits(resumed.History.Select(m => m.TestLoss)).SequenceEqual(Bits(reference.History.Select(m => m.TestLoss))))
                    failures.Add($"{what}: test losses differ");
                if (!Listing(dir).SequenceEqual(Listing(refDir)))
                    failures.Add($"{what}: files {string.Join(", ", Listing(dir))} instead of {string.Join(", ", Listing(refDir))}");
            }
        Assert.That(failures, Is.Empty);
    }

    [Test]
    public void TheFolderHoldsOneSetAndItsTopLevelCopies()
    {
        var (dir, result) = Reference.Value;
        Assert.That(Listing(dir), Is.EqualTo(new[]
        {
            ".lock", "best.safetensors", "checkpoint.json", "ckpt-0003", "ckpt-0003/best.safetensors", "ckpt-0003/config.json", "ckpt-0003/model.safetensors",
            "ckpt-0003/optimizer.safetensors", "ckpt-0003/trainer_state.json", "config.json", "last.safetensors", "metrics.csv",
        }));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "ckpt-0003", "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(dir, RunFiles.Last))));
        var (_, _, bestEpoch) = RunFiles.ReadModelMetadata(Path.Combine(dir, RunFiles.Best));
        Assert.That(bestEpoch, Is.EqualTo(result.BestEpoch), "best.safetensors holds the best epoch's weights");
    }

    /// <summary>A run folder as main wrote it before checkpoint sets: last.safetensors + trainer_state.json/.safetensors.</summary>
    private static string LegacyCopyOfEpoch1()
    {
        string dir = CopyOf(AfterEpoch1.Value);
        string set = Path.Combine(dir, "ckpt-0001");
        File.Move(Path.Combine(set, RunCheckpoints.StateFile), Path.Combine(dir, RunCheckpoints.LegacyState));
        File.Move(Path.Combine(set, RunCheckpoints.OptimizerFile), Path.Combine(dir, RunCheckpoints.LegacyOptimizer));
        Directory.Delete(set, true);
        File.Delete(Path.Combine(dir, RunCheckpoints.Pointer));
        return dir;
    }

    [Test]
    public void AnOldLayoutRunFolderResumesExactlyAndMovesToSets()
    {
        var (refDir, _) = Reference.Value;
        string dir = LegacyCopyOfEpoch1();
        ResumeToEnd(dir);
        Assert.That(File.ReadAllBytes(Path.Combine(dir, RunFiles.Last)), Is.EqualTo(File.ReadAllBytes(Path.Combine(refDir, RunFiles.Last))));
        Assert.That(Listing(dir), Is.EqualTo(Listing(refDir)), "the old trainer_state.* files are gone");
    }

    [Test]
    public void AnOldLayoutFolderWhoseFilesDisagreeIsRefusedNamingTheState()
    {
        string dir = LegacyCopyOfEpoch1();
        using (var net = new MtlMoe.Model.Net.MtlMoeNet(Config, seed: 1))
            RunFiles.SaveModel(Path.Combine(dir, RunFiles.Last), net, ["a", "b", "c", "d"], epoch: 2);
        var (net2, trainer) = TrainingFixtures.NewTrainer(Config, Options, dir, data: Mini);
        using (net2) using (trainer)
        {
            var e = Assert.Throws<FileProblemException>(() => trainer.Resume(dir))!;
            Assert.That(e.File, Is.EqualTo(Path.Combine(dir, RunCheckpoints.LegacyState)));
            Assert.That(e.Message, Does.Contain("last.safetensors is from epoch 2").And.Contain("stopped while saving"));
        }
    }

    [TestCase("truncate"), TestCase("missing-set"), TestCase("foreign-folder")]
    public void ADamagedPointerIsAnErrorNamingIt(string damage)
    {
        string dir = CopyOf(AfterEpoch1.Value);
        string pointer = Path.Combine(dir, RunCheckpoints.Pointer);
        switch (damage)
        {
            case "truncate": File.WriteAllText(pointer, File.ReadAllText(pointer)[..10]); break;
            case "missing-set": Directory.Delete(Path.Combine(dir, "ckpt-0001"), true); break;
            default: File.WriteAllText(pointer, """{"format":"mtl-moe-run/2","epoch":1,"folder":"../elsewhere"}"""); break;
        }
        var (net, trainer) = TrainingFixtures.NewTrainer(Config, Options, dir, data: Mini);
        using (net) using (trainer)
        {
            var e = Assert.Throws<FileProblemException>(() => trainer.Resume(dir))!;
            Assert.That(e.Message, Does.StartWith(damage == "missing-set" ? Path.Combine(dir, "ckpt-0001") : pointer));
        }
    }
}
