using System.Diagnostics;
using MtlMoe.Model.Training;
using MtlMoe.Train.Reports;
using Spectre.Console;

namespace MtlMoe.Train.Progress;

/// <summary>
/// A Spectre.Console live display: an epoch bar (overall ETA) and a batch bar (running loss, top-1, images/s,
/// epoch ETA); finished epochs are printed as table rows above the bars, and so are messages.
/// </summary>
/// <remarks>
/// Spectre's progress display only exists inside a callback, so it runs on a background thread that waits until
/// <see cref="Dispose"/>; the trainer's calls only set task values and descriptions (Spectre locks those) and write
/// lines through the console, whose render hook redraws the bars below them. Redraws are rate-limited by Spectre's
/// refresh timer, so calling <see cref="Batch"/> at any rate is cheap.
/// </remarks>
public sealed class LiveProgress : ITrainingProgress
{
    private readonly IAnsiConsole _console;
    private readonly object _gate = new();
    private readonly ManualResetEventSlim _ready = new(false), _stop = new(false);
    private Thread? _thread;
    private ProgressTask? _epochTask, _batchTask;
    private Exception? _failure;
    private bool _headerPrinted, _disposed;
    private int _epochs, _batches, _epochsDone;
    private string _title = "";
    private readonly Stopwatch _run = new(), _epoch = new();

    /// <summary>A display on <paramref name="console"/> (the process console when null).</summary>
    public LiveProgress(IAnsiConsole? console = null) => _console = console ?? AnsiConsole.Console;

    /// <inheritdoc/>
    public void BeginRun(string title, int epochs, int batchesPerEpoch)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            StopDisplay();
            _title = title; _epochs = Math.Max(1, epochs); _batches = Math.Max(1, batchesPerEpoch); _epochsDone = 0;
            _headerPrinted = false;
            _console.MarkupLine($"[bold]{Markup.Escape(title)}[/]");
            _run.Restart(); _epoch.Restart();
            _ready.Reset(); _stop.Reset();
            _thread = new Thread(RunDisplay) { IsBackground = true, Name = "live-progress" };
            _thread.Start();
            _ready.Wait();
        }
    }

    private void RunDisplay()
    {
        try
        {
            _console.Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .AutoRefresh(true)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 24 }, new PercentageColumn())
                .Start(ctx =>
                {
                    _epochTask = ctx.AddTask(EpochText(null), maxValue: _epochs);
                    _batchTask = ctx.AddTask(BatchText(double.NaN, double.NaN, double.NaN, null), maxValue: _batches);
                    _ready.Set();
                    _stop.Wait();
                    ctx.Refresh();
                });
        }
        catch (Exception e) { _failure = e; }
        finally { _ready.Set(); }
    }

    /// <inheritdoc/>
    public void Batch(int epoch, int batch, double loss, double top1, double imagesPerSecond)
    {
        lock (_gate)
        {
            if (_batchTask is null || _epochTask is null) return;
            double done = Math.Clamp(batch, 0, _batches);
            double epochEta = done > 0 ? _epoch.Elapsed.TotalSeconds / done * (_batches - done) : double.NaN;
            _batchTask.Value = done;
            _batchTask.Description = BatchText(loss, top1, imagesPerSecond, epochEta);
            double fraction = (_epochsDone + done / _batches) / _epochs;
            _epochTask.Value = fraction * _epochs; // the epoch bar advances within the epoch too
            _epochTask.Description = EpochText(fraction > 0 ? _run.Elapsed.TotalSeconds / fraction * (1 - fraction) : null);
        }
    }

    /// <inheritdoc/>
    public void Evaluating(int epoch)
    {
        lock (_gate)
        {
            if (_batchTask is null) return;
            _batchTask.Value = _batches;
            _batchTask.Description = $"[yellow]epoch {epoch}: evaluating the test split…[/]";
        }
    }

    /// <inheritdoc/>
    public void EndEpoch(EpochMetrics metrics)
    {
        lock (_gate)
        {
            if (!_headerPrinted) { _console.MarkupLine($"[bold]{Markup.Escape(EpochRowFormat.Header)}[/]"); _headerPrinted = true; }
            _console.WriteLine(EpochRowFormat.Row(metrics));
            _epochsDone = Math.Max(_epochsDone, Math.Min(metrics.Epoch, _epochs));
            if (_epochTask is not null)
            {
                _epochTask.Value = _epochsDone;
                double fraction = (double)_epochsDone / _epochs;
                _epochTask.Description = EpochText(_epochsDone < _epochs ? _run.Elapsed.TotalSeconds / fraction * (1 - fraction) : 0);
            }
            if (_batchTask is not null)
            {
                bool last = _epochsDone >= _epochs;
                _batchTask.Value = last ? _batches : 0;
                _batchTask.Description = last ? Markup.Escape($"done in {Fmt.Duration(_run.Elapsed.TotalSeconds)}")
                                              : BatchText(double.NaN, double.NaN, double.NaN, null);
            }
            _epoch.Restart();
        }
    }

    /// <inheritdoc/>
    public void Message(string text)
    {
        lock (_gate) _console.MarkupLine($"[grey]{Markup.Escape(text)}[/]");
    }

    /// <summary>The exception that stopped the display thread, if any (the bars then simply stop updating).</summary>
    public Exception? Failure => _failure;

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            StopDisplay();
            _ready.Dispose(); _stop.Dispose();
        }
    }

    // Ends the live area (it stays on screen as it was last drawn) and waits for its thread.
    private void StopDisplay()
    {
        if (_thread is null) return;
        _stop.Set();
        _thread.Join();
        _thread = null; _epochTask = null; _batchTask = null;
    }

    private string EpochText(double? etaSeconds)
    {
        string eta = etaSeconds is double s && s > 0 ? $"  ETA {Fmt.Duration(s)}" : "";
        string epoch = _epochsDone >= _epochs ? $"{_epochs} epochs" : $"epoch {_epochsDone + 1}/{_epochs}";
        string title = _title.Length > 28 ? _title[..27] + "…" : _title; // keeps the bars on one 80-column line
        return $"[bold]{Markup.Escape(title)}[/] {epoch}{eta}";
    }

    private static string BatchText(double loss, double top1, double ips, double? etaSeconds)
    {
        string eta = etaSeconds is double s && double.IsFinite(s) ? $" ETA {Fmt.Duration(s)}" : "";
        return Markup.Escape($"loss {Fmt.Num(loss, 3)} top-1 {Fmt.Pct(top1)} {Fmt.Num(ips, 0)} img/s{eta}");
    }
}
