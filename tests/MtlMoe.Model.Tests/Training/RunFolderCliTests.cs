using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using MtlMoe.Model.Training;
using MtlMoe.Tests.Data;

namespace MtlMoe.Tests.Training;

/// <summary>Issue 18, items 4 and 5: the run folder is locked for the run's life; --resume honours --epochs and refuses the rest.</summary>
public class RunFolderCliTests
{
    private static string[] TrainArgs(string data, string dir, params string[] extra) => ["--data", data, "--out", dir, .. CliRunner.Tiny, .. extra];

    [Test]
    public void ASecondProcessCannotUseALockedRunFolder()
    {
        string data = TestSets.CopyOfMaster();
        string dir = Path.Combine(TrainingFixtures.NewTempDir(), "run");
        using (RunLock.Acquire(dir))
        {
            // Another process: the built program, started the way a user starts it.
            string dll = Path.Combine(AppContext.BaseDirectory, "MtlMoe.Train.dll");
            var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
            };
            foreach (var a in (string[])[dll, .. TrainArgs(data, dir)]) psi.ArgumentList.Add(a);
            using var child = Process.Start(psi)!;
            string err = child.StandardError.ReadToEnd();
            child.StandardOutput.ReadToEnd();
            Assert.That(child.WaitForExit(60_000), Is.True);
            Assert.That(child.ExitCode, Is.EqualTo(1), err);
            Assert.That(CliRunner.FirstLine(err), Does.StartWith($"error: {dir}: is in use by another run"));

            // And a second run in this process.
            var (code, _, err2) = CliRunner.Run(TrainArgs(data, dir));
            Assert.That((code, CliRunner.FirstLine(err2)), Is.EqualTo((1, CliRunner.FirstLine(err))));
        }
        // Released: the folder is free again (and, holding nothing, was removed).
        Assert.That(Directory.Exists(dir), Is.False);
        using (RunLock.Acquire(dir)) { }
    }

    [Test]
    public void AmpIsRecordedAndKeptOnResume()
    {
        string data = TestSets.CopyOfMaster();
        string dir = Path.Combine(TrainingFixtures.NewTempDir(), "run");
        var (code, _, err) = CliRunner.Run(TrainArgs(data, dir, "--amp", "bf16"));
        Assert.That(code, Is.EqualTo(0), err);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunFiles.Config)))!;
        Assert.That((string?)config["settings"]!["amp"], Is.EqualTo("bf16"));
        Assert.That((string?)config["trainer"]!["amp"], Is.EqualTo("bf16"));
        // Resume continues in bf16 without being told, and refuses to switch precision.
        var (c1, _, e1) = CliRunner.Run("--resume", dir, "--amp", "off");
        Assert.That((c1, CliRunner.FirstLine(e1)), Is.EqualTo((2, $"error: --resume continues {dir} with the settings in its config.json; --amp cannot change " +
            "(on resume only --epochs, --device, --threads, --workers, --tf32, --data, --plain, --debug may be given)")));
        var (c2, _, e2) = CliRunner.Run("--resume", dir, "--epochs", "2", "--workers", "1");
        Assert.That(c2, Is.EqualTo(0), e2);
        var after = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunFiles.Config)))!;
        Assert.That((string?)after["trainer"]!["amp"], Is.EqualTo("bf16"));
    }

    [Test]
    public void ResumeHonoursEpochsAndRecomputesTheSchedule()
    {
        string data = TestSets.CopyOfMaster();
        string dir = Path.Combine(TrainingFixtures.NewTempDir(), "run");
        var (code, _, err) = CliRunner.Run(TrainArgs(data, dir, "--epochs", "2"));
        Assert.That(code, Is.EqualTo(0), err);

        // Options that would make it another run are refused, naming them and what resume takes.
        var (c1, _, e1) = CliRunner.Run("--resume", dir, "--epochs", "4", "--lr", "0.5", "--seed", "3");
        Assert.That(c1, Is.EqualTo(2));
        Assert.That(CliRunner.FirstLine(e1), Is.EqualTo($"error: --resume continues {dir} with the settings in its config.json; --lr, --seed cannot change " +
            "(on resume only --epochs, --device, --threads, --workers, --tf32, --data, --plain, --debug may be given)"));
        var (c2, _, e2) = CliRunner.Run("--resume", dir, "--epochs", "1");
        Assert.That((c2, CliRunner.FirstLine(e2)), Is.EqualTo((2, "error: --epochs 1: the run has already finished 2 epochs (give more to train further)")));

        // --epochs 4 trains epochs 3 and 4 on the schedule of a 4-epoch run.
        var (c3, _, e3) = CliRunner.Run("--resume", dir, "--epochs", "4", "--workers", "1");
        Assert.That(c3, Is.EqualTo(0), e3);
        var state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(Path.Combine(dir, "ckpt-0004", RunCheckpoints.StateFile)), RunFiles.Json)!;
        Assert.That(state.History.Select(m => m.Epoch), Is.EqualTo(new[] { 1, 2, 3, 4 }));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunFiles.Config)))!;
        Assert.That((int)config["settings"]!["epochs"]!, Is.EqualTo(4));
        Assert.That((int)config["settings"]!["workers"]!, Is.EqualTo(1), "the changed option is recorded");
        var trainer = config["trainer"].Deserialize<TrainerOptions>(RunFiles.Json)!;
        long stepsPerEpoch = state.GlobalStep / 4;
        var four = Trainer.ScheduleFor(trainer, (int)stepsPerEpoch);
        var two = Trainer.ScheduleFor(trainer with { Epochs = 2 }, (int)stepsPerEpoch);
        Assert.That(state.History[1].LearningRate, Is.EqualTo(two.At(2 * stepsPerEpoch - 1)), "epoch 2 ran on the 2-epoch schedule");
        Assert.That(state.History[2].LearningRate, Is.EqualTo(four.At(3 * stepsPerEpoch - 1)), "epoch 3 on the 4-epoch one");
        Assert.That(state.History[3].LearningRate, Is.EqualTo(four.At(4 * stepsPerEpoch - 1)));

        // A finished run resumed as it is trains nothing more.
        var (c4, _, e4) = CliRunner.Run("--resume", dir);
        Assert.That(c4, Is.EqualTo(0), e4);
        Assert.That(File.ReadAllLines(Path.Combine(dir, RunFiles.Metrics)), Has.Length.EqualTo(5));
    }

    [Test]
    public void ResumeWithAnotherDataSetIsRefused()
    {
        string data = TestSets.CopyOfMaster();
        string dir = Path.Combine(TrainingFixtures.NewTempDir(), "run");
        Assert.That(CliRunner.Run(TrainArgs(data, dir)).Code, Is.EqualTo(0));
        string other = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(other, "train_test_split.txt", 1, "1 0");   // one more test image, one fewer train
        var (code, _, err) = CliRunner.Run("--resume", dir, "--data", other, "--epochs", "2");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(CliRunner.FirstLine(err), Does.EndWith("--resume needs the same data set").And.Contain("5 train / 7 test images"));
    }
}

/// <summary>Issue 18, item 3: --skip-bad decodes every image before training and drops, lists and counts the bad ones.</summary>
public class SkipBadCliTests
{
    [Test]
    [NonParallelizable] // swaps Console.Out to read the progress lines it asserts on
    public void SkipBadDropsUndecodableImagesBeforeTrainingAndListsThem()
    {
        string data = TestSets.CopyOfMaster();
        string dir = Path.Combine(TrainingFixtures.NewTempDir(), "run");
        var truncated = Path.GetFullPath(TestSets.ImagePath(data, 7));
        var bytes = File.ReadAllBytes(truncated);
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);          // headers intact: only decoding finds it
        File.Delete(TestSets.ImagePath(data, 5));

        var console = Console.Out;
        var printed = new StringWriter();
        Console.SetOut(printed);                                             // the plain progress lines
        int code;
        string err;
        try { (code, _, err) = CliRunner.Run(["--data", data, "--out", dir, .. CliRunner.Tiny, "--skip-bad"]); }
        finally { Console.SetOut(console); }
        Assert.That(code, Is.EqualTo(0), err);

        var skipped = File.ReadAllLines(Path.Combine(dir, RunFiles.Skipped));
        Assert.That(skipped, Has.Length.EqualTo(2));
        Assert.That(skipped, Has.Some.StartsWith(truncated + ": truncated or corrupt image"));
        Assert.That(skipped, Has.Some.Contains("images.txt:5: image file"));
        var lines = printed.ToString().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.That(lines.Count(l => l.Contains("skipped: ")), Is.EqualTo(2), "one line per image");
        Assert.That(lines, Has.Some.Contains("--skip-bad: left out 2 image(s) or line(s), 10 images remain"));
        Assert.That(lines, Has.Some.Contains("checking images: 11/11 decoded"));
    }
}
