using System.Diagnostics;
using System.Globalization;
using MtlMoe.Model.Training;

namespace MtlMoe.Train.Progress;

/// <summary>Progress as plain lines: one every <see cref="Every"/> batches and one per epoch, with loss, top-1, images/s and ETA.</summary>
public sealed class PlainProgress(TextWriter? output = null, int every = 0) : ITrainingProgress
{
    private readonly TextWriter _out = output ?? Console.Out;
    private readonly Stopwatch _clock = new();
    private int _epochs, _batches, _every = every;
    private long _firstDone = -1;

    /// <summary>Batches between lines (0: about four lines per epoch).</summary>
    public int Every => _every;

    /// <inheritdoc />
    public void BeginRun(string title, int epochs, int batchesPerEpoch)
    {
        _epochs = epochs; _batches = batchesPerEpoch;
        if (_every <= 0) _every = Math.Max(1, batchesPerEpoch / 4);
        _clock.Restart();
        _firstDone = -1;
        Line($"{title}: {epochs} epochs × {batchesPerEpoch} batches");
    }

    /// <inheritdoc />
    public void Batch(int epoch, int batch, double loss, double top1, double imagesPerSecond)
    {
        long done = (long)(epoch - 1) * _batches + batch;
        if (_firstDone < 0) { _firstDone = done - 1; _clock.Restart(); }
        if (batch % _every != 0 && batch != _batches) return;
        long total = (long)_epochs * _batches;
        double perBatch = _clock.Elapsed.TotalSeconds / Math.Max(1, done - _firstDone);
        var eta = TimeSpan.FromSeconds(perBatch * (total - done));
        Line($"epoch {epoch}/{_epochs} batch {batch}/{_batches}  loss {loss:F3}  top-1 {top1:P1}  {imagesPerSecond:F1} img/s  ETA {Format(eta)}");
    }

    /// <inheritdoc />
    public void Evaluating(int epoch) { }

    /// <inheritdoc />
    public void EndEpoch(EpochMetrics m)
    {
        var iou = double.IsNaN(m.TestMeanIoU) ? "" : $"  IoU {m.TestMeanIoU:F3} (≥.5 {m.TestIoU50:P0})";
        var load = m.ExpertLoad.Length > 1 ? "  load " + string.Join(" ", m.ExpertLoad.Select(l => l.ToString("F2", CultureInfo.InvariantCulture))) : "";
        Line($"epoch {m.Epoch}/{_epochs} done in {m.Seconds:F1} s  train loss {m.TrainLoss:F3} top-1 {m.TrainTop1:P1} | test loss {m.TestLoss:F3} top-1 {m.TestTop1:P1} top-5 {m.TestTop5:P1}{iou}{load}  lr {m.LearningRate:G3}");
    }

    /// <inheritdoc />
    public void Message(string text) => Line(text);

    private void Line(string s) { _out.WriteLine(s); _out.Flush(); }

    private static string Format(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{t.Minutes}m{t.Seconds:00}s";

    /// <inheritdoc />
    public void Dispose() => _out.Flush();
}
