using MtlMoe.Model.IO;
using MtlMoe.Model.Data;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;

namespace MtlMoe.Train.Commands;

/// <summary><c>train</c>: trains a model into a run folder (or continues one with --resume).</summary>
public static class TrainCommand
{
    /// <summary>Runs the command; returns the exit code.</summary>
    public static int Run(TrainSettings settings, CancellationToken cancel)
    {
        using var progress = Reporting.CreateProgress(settings);
        string? runDir = null;
        try
        {
            var result = Train(settings, progress, Reporting.Create(), cancel, dir => runDir = dir);
            var f = result.Final;
            var iou = double.IsNaN(f.MeanIoU) ? "" : $", mean IoU {f.MeanIoU:F3}, IoU≥0.5 {f.IoU50:P1}";
            progress.Message($"done in {result.Seconds:F0} s: test top-1 {f.Top1:P1}, top-5 {f.Top5:P1}{iou}; best top-1 {result.BestTop1:P1} (epoch {result.BestEpoch}); run folder {Path.GetFullPath(runDir!)}");
            return 0;
        }
        catch (OperationCanceledException)
        {
            progress.Message(runDir is not null && RunCheckpoints.HasCheckpoint(runDir)
                ? $"interrupted; the last finished epoch is saved — continue with: --resume {runDir}"
                : "interrupted before the first epoch finished; nothing to resume");
            return 130;
        }
    }

    /// <summary>
    /// The whole training pipeline: settings (or the resumed run's saved settings) → device, data, model
    /// (with --pretrained / --init-experts-from), trainer → result. <paramref name="onRunDir"/> learns the folder early.
    /// </summary>
    public static TrainResult Train(TrainSettings settings, ITrainingProgress progress, IRunReporter? reporter,
        CancellationToken cancel = default, Action<string>? onRunDir = null, Action<Trainer>? configure = null)
    {
        // The folder is locked before anything is read or written, so two runs never share it.
        string runDir = settings.Resume ?? settings.Out ?? RunSetup.DefaultRunDir(settings);
        using var runLock = RunLock.Acquire(runDir);
        var s = settings;
        TrainSettings? saved = null;
        if (settings.Resume is not null)
        {
            saved = RunSetup.ReadSettings(runDir);
            s = ResumeSettings.Merge(settings, saved, runDir);
        }
        else if (RunCheckpoints.HasCheckpoint(runDir))
            throw new UsageException($"{runDir} already holds a run; continue it with --resume {runDir} or choose another --out");
        onRunDir?.Invoke(runDir);
        RunSetup.ApplyThreads(s);
        var (device, why) = RunSetup.ResolveDevice(s.Device);
        RunSetup.ApplyMath(s, device);
        progress.Message($"device: {device} ({why}){(device.Type == MtlMoe.Engine.DeviceType.Cuda && s.Tf32 ? ", TF32 tensor cores on" : "")}" +
            (s.Amp == AmpMode.Bf16 ? $", bf16 autocast{(device.Type == MtlMoe.Engine.DeviceType.Cpu ? " (the CPU's bf16 reference ops: correct, slower than float32)" : "")}" : ""));
        var data = RunSetup.LoadData(s, progress.Message, cancel);
        progress.Message($"data: {data.Root ?? "(in memory)"} — {data.NumClasses} classes, {data.Train.Count} train / {data.Test.Count} test images");
        if (saved is not null && s.Given.Contains("data")) ResumeSettings.CheckSameData(runDir, data);
        RunSetup.ReportSkipped(data, runDir, progress.Message);
        var config = RunSetup.ModelConfigOf(s, data.NumClasses);
        var options = RunSetup.TrainerOptionsOf(s, device);

        using var net = new MtlMoeNet(config, s.Seed);
        if (s.Resume is null)
        {
            if (s.Pretrained is not null)
            {
                var report = s.Pretrained == PretrainedChoice.ImageNet
                    ? Transfer.LoadImageNetBackbone(net, RunSetup.CacheDir, progress.Message)
                    : FileErrors.About(s.Pretrained, () => Transfer.LoadPretrainedBackbone(net, s.Pretrained));
                progress.Message($"pretrained backbone {s.Pretrained}:");
                foreach (var line in Transfer.Describe(report)) progress.Message(line);
            }
            if (s.InitExpertsFrom is not null)
            {
                var report = FileErrors.About(s.InitExpertsFrom, () => Transfer.InitExpertsFrom(net, s.InitExpertsFrom));
                progress.Message($"experts initialised from {s.InitExpertsFrom}'s head:");
                foreach (var line in Transfer.Describe(report)) progress.Message(line);
            }
        }
        net.To(device);
        progress.Message($"model: {config.Variant.ToChoiceName()}, {config.Backbone.ToChoiceName()} ×{config.Width}, {config.EffectiveExperts} expert(s) k={config.EffectiveK} ({config.ExpertDepth.ToChoiceName()}), {net.ParameterCount():N0} parameters; run folder {runDir}");
        using var trainer = new Trainer(net, data, options, runDir, RunSetup.ConfigJson(s, config, options, data), progress, reporter, runLock);
        configure?.Invoke(trainer);
        if (saved is not null)
        {
            trainer.Resume(runDir);
            if (ResumeSettings.DescribeEpochs(RunSetup.TrainerOptionsOf(saved, device), options, trainer) is { } note) progress.Message(note);
        }
        return trainer.Run(cancel);
    }
}
