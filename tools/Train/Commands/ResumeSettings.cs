using System.Text.Json.Nodes;
using MtlMoe.Model.Data;
using MtlMoe.Model.IO;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;

namespace MtlMoe.Train.Commands;

/// <summary>
/// What <c>--resume RUN</c> takes from the run's config.json and what the command line may still change: the
/// number of epochs (the schedule is then recomputed for the new total), where it runs (--device, --threads,
/// --workers, --tf32), where the data set now lies (--data, checked against the run's class and image counts) and
/// how it reports (--plain, --debug). Everything else (model, recipe, seed, data options) would make the continued
/// run a different one, so it is refused.
/// </summary>
public static class ResumeSettings
{
    /// <summary>The options --resume accepts besides itself.</summary>
    public static readonly string[] Changeable = ["epochs", "device", "threads", "workers", "tf32", "data", "plain", "debug"];

    /// <summary>The saved settings of <paramref name="runDir"/> with the changeable options the user gave.</summary>
    public static TrainSettings Merge(TrainSettings given, TrainSettings saved, string runDir)
    {
        var refused = given.Given.Where(n => n != "resume" && !Changeable.Contains(n)).ToList();
        if (refused.Count > 0)
            throw new UsageException($"--resume continues {runDir} with the settings in its config.json; {string.Join(", ", refused.Select(n => "--" + n))} cannot change " +
                $"(on resume only {string.Join(", ", Changeable.Select(n => "--" + n))} may be given)");
        var s = saved with { Resume = runDir, Out = runDir, Command = CommandKind.Train, Given = given.Given };
        bool Has(string n) => given.Given.Contains(n);
        if (Has("epochs")) s = s with { Epochs = given.Epochs };
        if (Has("device")) s = s with { Device = given.Device };
        if (Has("threads")) s = s with { Threads = given.Threads };
        if (Has("workers")) s = s with { Workers = given.Workers };
        if (Has("tf32")) s = s with { Tf32 = true };
        if (Has("data")) s = s with { Data = given.Data };
        return s with { Plain = given.Plain || saved.Plain, Debug = given.Debug };
    }

    /// <summary>Refuses a --data folder whose classes or split sizes differ from the run's (config.json's "data").</summary>
    public static void CheckSameData(string runDir, CubDataset data)
    {
        var path = new RunCheckpoints(runDir, DiskFileOps.Instance).Committed()?.Config ?? Path.Combine(runDir, RunFiles.Config);
        var saved = FileErrors.About(path, () => JsonNode.Parse(File.ReadAllText(path))?["data"]);
        if (saved is null) return;
        int classes = (int?)saved["classes"] ?? -1, train = (int?)saved["train"] ?? -1, test = (int?)saved["test"] ?? -1;
        if ((classes, train, test) != (data.NumClasses, data.Train.Count, data.Test.Count))
            throw new UsageException($"--data {data.Root}: {data.NumClasses} classes, {data.Train.Count} train / {data.Test.Count} test images, " +
                $"but the run was trained on {classes} classes, {train} / {test} (its config.json); --resume needs the same data set");
    }

    /// <summary>
    /// Checks --epochs against the epochs already done and describes a change of the total: the warm-up + cosine
    /// schedule is recomputed for the new total and the next step takes its rate from it. Null when nothing changes.
    /// </summary>
    public static string? DescribeEpochs(TrainerOptions saved, TrainerOptions now, Trainer trainer)
    {
        int done = trainer.EpochsDone;
        if (now.Epochs < done)
            throw new UsageException($"--epochs {now.Epochs}: the run has already finished {done} epochs (give more to train further)");
        if (now.Epochs == saved.Epochs)
            return done >= now.Epochs ? $"the run has finished all {done} epochs; nothing to train (give --epochs N > {done} to train further)" : null;
        long step = trainer.GlobalStep;
        double before = Trainer.ScheduleFor(saved, trainer.StepsPerEpoch).At(step), after = Trainer.ScheduleFor(now, trainer.StepsPerEpoch).At(step);
        return FormattableString.Invariant(
            $"--epochs {now.Epochs} (the run was planned for {saved.Epochs}): the warm-up + cosine schedule is recomputed for {now.Epochs} epochs; ") +
            FormattableString.Invariant($"step {step + 1} continues at lr {after:G4} where the {saved.Epochs}-epoch schedule gave {before:G4}; ") +
            (done == 1 ? "epoch 1 keeps the rates it had" : $"epochs 1–{done} keep the rates they had");
    }
}
