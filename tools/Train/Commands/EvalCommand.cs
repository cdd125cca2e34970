using MtlMoe.Engine;
using MtlMoe.Model.Data;
using MtlMoe.Model.IO;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;

namespace MtlMoe.Train.Commands;

/// <summary><c>eval</c>: evaluates a checkpoint on the test split of its data set.</summary>
public static class EvalCommand
{
    /// <summary>Runs the command; returns the exit code.</summary>
    public static int Run(TrainSettings settings, TextWriter output, TextWriter error, CancellationToken cancel = default)
    {
        EvalResult result;
        try { result = Evaluate(settings, output, cancel); }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            error.WriteLine("interrupted; nothing was written");
            return 130;
        }
        output.WriteLine($"test: loss {result.Loss:F4}, top-1 {result.Top1:P2}, top-5 {result.Top5:P2}" +
            (double.IsNaN(result.MeanIoU) ? "" : $", mean IoU {result.MeanIoU:F3}, IoU≥0.5 {result.IoU50:P1}") +
            (result.ExpertLoad.Length > 1 ? $", expert load {string.Join(" ", result.ExpertLoad.Select(l => l.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))}" : ""));
        return 0;
    }

    /// <summary>
    /// The checkpoint is --checkpoint FILE or --resume RUN_DIR's best.safetensors; the data are the settings', or
    /// those of the run folder next to the checkpoint (its config.json) when there is one.
    /// </summary>
    public static EvalResult Evaluate(TrainSettings settings, TextWriter output, CancellationToken cancel = default)
    {
        string ckpt = settings.Checkpoint ?? Path.Combine(settings.Resume!, RunFiles.Best);
        var s = settings;
        var sibling = Path.GetDirectoryName(Path.GetFullPath(ckpt))!;
        if (settings.Data is null && File.Exists(Path.Combine(sibling, RunFiles.Config)))
            s = RunSetup.ReadSettings(sibling) with { Threads = settings.Threads, Device = settings.Device, Workers = settings.Workers };
        RunSetup.ApplyThreads(s);
        var (device, why) = RunSetup.ResolveDevice(s.Device);
        RunSetup.ApplyMath(s, device);
        output.WriteLine($"device: {device} ({why})");
        var (net, classes, epoch) = RunFiles.LoadModel(ckpt, device);
        using var _ = net;
        var data = RunSetup.LoadData(s, output.WriteLine, cancel);
        if (data.NumClasses != net.Config.Classes)
            throw new InvalidOperationException($"{ckpt} predicts {net.Config.Classes} classes but the data set has {data.NumClasses}");
        int res = net.Config.Resolution, resize = s.Res == res ? RunSetup.ResizeOf(s) : CubTransforms.ResizeFor(res);
        output.WriteLine($"checkpoint {ckpt} (epoch {epoch}, {net.Config.Variant.ToChoiceName()}) on {data.Test.Count} test images at {res}px");
        using var loader = new CubLoader(data.Test, CubTransforms.Test(res, resize), new CubBatchOptions { BatchSize = s.Batch, Shuffle = false, Threads = s.Workers, Limits = RunSetup.DecodeLimitsOf(s) });
        return Evaluator.Evaluate(net, loader, data.Test, data.ClassNames, res, resize, new LossOptions(s.LabelSmoothing, s.LambdaLoc), device, cancel);
    }
}
