using System.Diagnostics;
using System.Text.Json;
using MtlMoe.Engine;
using MtlMoe.Engine.IO;
using MtlMoe.Engine.Optim;
using MtlMoe.Model.Data;
using MtlMoe.Model.IO;
using MtlMoe.Model.Net;

namespace MtlMoe.Model.Training;

/// <summary>
/// Trains an <see cref="MtlMoeNet"/> on a CUB-format data set: epochs of augmented batches (SGD momentum 0.9 or
/// AdamW, warm-up + cosine per step, one dispose scope per step), a test evaluation per epoch, and a run folder
/// (config.json, metrics.csv, last/best checkpoints, trainer state — all written atomically). With
/// <see cref="Resume"/> it continues a run so that, on the CPU, its losses match an uninterrupted run bit for bit.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly MtlMoeNet _net;
    private readonly CubDataset _data;
    private readonly TrainerOptions _o;
    private readonly ITrainingProgress _progress;
    private readonly IRunReporter? _reporter;
    private readonly CubLoader _train, _test;
    private readonly Optimizer _optimizer;
    private readonly LrSchedule _schedule;
    private readonly Device _device;
    private readonly List<EpochMetrics> _history = new();
    private readonly List<double> _stepLosses = new();
    private int _epochsDone;
    private long _globalStep;
    private double _bestTop1 = -1;
    private int _bestEpoch;
    private readonly RunLock? _ownLock;

    /// <summary>The run folder.</summary>
    public string RunDir { get; }
    /// <summary>config.json's content.</summary>
    public string ConfigJson { get; }
    /// <summary>Training batches per epoch (after <see cref="TrainerOptions.MaxBatches"/>).</summary>
    public int StepsPerEpoch { get; }
    /// <summary>Metrics of every finished epoch.</summary>
    public IReadOnlyList<EpochMetrics> History => _history;
    /// <summary>The total loss of every optimizer step this instance ran, in order.</summary>
    public IReadOnlyList<double> StepLosses => _stepLosses;
    /// <summary>Epochs finished so far (restored by <see cref="Resume"/>).</summary>
    public int EpochsDone => _epochsDone;

    /// <summary>Optimizer steps taken so far (restored by <see cref="Resume"/>).</summary>
    public long GlobalStep => _globalStep;

    /// <summary>
    /// The learning rate per step: linear warm-up over <see cref="TrainerOptions.WarmupEpochs"/>, then cosine decay to 0
    /// at <see cref="TrainerOptions.Epochs"/> × <paramref name="stepsPerEpoch"/> steps. A run resumed with more epochs
    /// gets the schedule of its new total from its next step on (the steps already taken keep theirs).
    /// </summary>
    public static LrSchedule ScheduleFor(TrainerOptions options, int stepsPerEpoch)
    {
        long total = (long)options.Epochs * stepsPerEpoch;
        return LrSchedule.WarmupCosine(options.Lr, Math.Min(total - 1, (long)Math.Round(options.WarmupEpochs * stepsPerEpoch)), total);
    }

    /// <summary>Test seam: called before each training step with (0-based epoch, 0-based batch).</summary>
    internal Action<int, int>? BeforeStep { get; set; }

    /// <summary>Test seam: the file operations the run folder is written with (a test injects crashes here).</summary>
    internal IFileOps FileOps { get; set; } = DiskFileOps.Instance;

    /// <summary>
    /// A trainer for <paramref name="net"/> (already on <see cref="TrainerOptions.Device"/>) writing into
    /// <paramref name="runDir"/>; <paramref name="configJson"/> becomes config.json. A null reporter writes no reports.
    /// The folder must be locked for the trainer's life: pass the caller's <paramref name="runLock"/>, or the trainer
    /// takes one itself (and throws when another run holds the folder).
    /// </summary>
    public Trainer(MtlMoeNet net, CubDataset data, TrainerOptions options, string runDir, string configJson,
        ITrainingProgress progress, IRunReporter? reporter = null, RunLock? runLock = null)
    {
        _net = net; _data = data; _o = options; _progress = progress; _reporter = reporter;
        RunDir = runDir; ConfigJson = configJson;
        if (runLock is not null && runLock.RunDir != Path.GetFullPath(runDir)) throw new ArgumentException($"trainer: the lock is on {runLock.RunDir}, the run folder is {runDir}");

        _device = options.Device;
        if (data.Train.Count == 0 || data.Test.Count == 0) throw new ArgumentException("trainer: the data set needs both train and test images");
        var batch = Math.Min(options.BatchSize, data.Train.Count);
        _train = new CubLoader(data.Train, CubTransforms.Train(options.Crop, options.Resize, options.ColorJitter),
            new CubBatchOptions { BatchSize = batch, Shuffle = true, DropLast = true, Seed = options.Seed, Threads = options.Workers, CacheDecoded = options.CacheDecoded, Limits = new DecodeLimits { MaxPixels = options.MaxImagePixels } });
        _test = new CubLoader(data.Test, CubTransforms.Test(options.Crop, options.Resize),
            new CubBatchOptions { BatchSize = options.BatchSize, Shuffle = false, Seed = options.Seed, Threads = options.Workers, CacheDecoded = options.CacheDecoded, Limits = new DecodeLimits { MaxPixels = options.MaxImagePixels } });
        StepsPerEpoch = options.MaxBatches > 0 ? Math.Min(options.MaxBatches, _train.BatchesPerEpoch) : _train.BatchesPerEpoch;
        _optimizer = options.Optimizer switch
        {
            OptimizerKind.Sgd => new SGD(net.Parameters(), options.Lr, momentum: 0.9, weightDecay: options.WeightDecay, nesterov: false),
            OptimizerKind.AdamW => new AdamW(net.Parameters(), options.Lr, weightDecay: options.WeightDecay),
            _ => throw new ArgumentException($"trainer: unknown optimizer {(int)options.Optimizer}"),
        };
        net.Backbone.Freeze((int)options.Freeze);
        if (options.BackboneLrScale != 1.0) _optimizer.ScaleLearningRate(net.Backbone.Parameters(), options.BackboneLrScale);
        _schedule = ScheduleFor(options, StepsPerEpoch);
        _ownLock = runLock is null ? RunLock.Acquire(runDir) : null;   // last: nothing after it can throw and leak the lock
    }

    /// <summary>
    /// Restores the model, optimizer moments, step, RNG states and history from <paramref name="runDir"/>'s committed
    /// checkpoint (see <see cref="RunCheckpoints"/>; run folders of the older layout — last.safetensors beside
    /// trainer_state.json/.safetensors — are read too). Throws <see cref="FileProblemException"/> naming the file
    /// when a checkpoint file is damaged or the files disagree.
    /// </summary>
    public void Resume(string runDir)
    {
        var c = new RunCheckpoints(runDir, FileOps).Committed()
            ?? throw new FileProblemException(Path.Combine(runDir, RunCheckpoints.Pointer), 0, "not found: no epoch of that run finished, so there is nothing to resume (start it again without --resume)");
        var state = FileErrors.About(c.State, () => JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(c.State), RunFiles.Json))
            ?? throw new FileProblemException(c.State, 0, "is empty");
        if (!c.Legacy && state.Epoch != c.Epoch)
            throw new FileProblemException(c.State, 0, $"says epoch {state.Epoch} but {RunCheckpoints.Pointer} commits epoch {c.Epoch}; the set was changed by hand");
        var (model, modelMeta) = RunFiles.ReadTensors(c.Model);
        var (optTensors, optMeta) = (new Dictionary<string, Tensor>(), new Dictionary<string, string>());
        try
        {
            (optTensors, optMeta) = RunFiles.ReadTensors(c.Optimizer);
            int ckptEpoch = EpochOf(c.Model, modelMeta), optEpoch = EpochOf(c.Optimizer, optMeta);
            if (ckptEpoch != state.Epoch || optEpoch != state.Epoch)
                throw new FileProblemException(c.State, 0, $"says epoch {state.Epoch} but {Path.GetFileName(c.Model)} is from epoch {ckptEpoch} and {Path.GetFileName(c.Optimizer)} from epoch {optEpoch} — the run stopped while saving; it cannot continue exactly");
            if (state.Optimizer != _optimizer.Name) throw new FileProblemException(c.State, 0, $"the run used {state.Optimizer}, this trainer {_optimizer.Name}");
            RunFiles.LoadWeights(c.Model, _net, model);
            FileErrors.About(c.Optimizer, () => _optimizer.LoadStateTensors(optTensors));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new FileProblemException(c.Optimizer, 0, $"does not fit this model's optimizer ({e.Message})", e);
        }
        finally
        {
            foreach (var t in model.Values) t.Dispose();
            foreach (var t in optTensors.Values) t.Dispose();
        }
        foreach (var (name, rng) in _net.Rngs)
            if (state.Rngs.TryGetValue(name, out var s)) rng.SetState(s);
            else throw new FileProblemException(c.State, 0, $"no state for generator '{name}'");
        if (state.Rngs.TryGetValue("default", out var d)) Rng.Default.SetState(d);
        _history.Clear(); _history.AddRange(state.History);
        _epochsDone = state.Epoch; _globalStep = state.GlobalStep; _bestTop1 = state.BestTop1; _bestEpoch = state.BestEpoch;
        _progress.Message($"resumed from {runDir} after epoch {state.Epoch} (step {state.GlobalStep}, best top-1 {Math.Max(0, state.BestTop1):P1})" +
            (c.Legacy ? "; the next checkpoint is written in the new layout (ckpt-NNNN/ + checkpoint.json)" : ""));
    }

    private static int EpochOf(string path, IReadOnlyDictionary<string, string> meta)
        => meta.TryGetValue("epoch", out var e) && int.TryParse(e, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int v)
            ? v : throw new FileProblemException(path, 0, "has no 'epoch' metadata");

    /// <summary>Trains the remaining epochs, then reports. Cancellation stops between steps (nothing half-saved).</summary>
    public TrainResult Run(CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        FileErrors.About(RunDir, () => Directory.CreateDirectory(RunDir), "the run folder cannot be created there");
        var store = new RunCheckpoints(RunDir, FileOps);
        store.CleanStale();
        if (_epochsDone == 0) AtomicFile.WriteAllText(FileOps, Path.Combine(RunDir, RunFiles.Config), ConfigJson);
        else
        {
            store.Publish();   // a crash between a commit and its copies left them one epoch behind
            RunFiles.WriteMetricsCsv(Path.Combine(RunDir, RunFiles.Metrics), _history, FileOps);
        }
        _progress.BeginRun($"{_net.Config.Variant.ToChoiceName()} · {_net.Config.Backbone.ToChoiceName()}×{_net.Config.Width} · {_o.Crop}px · {_device}", _o.Epochs, StepsPerEpoch);
        EvalResult? final = null;
        for (int epoch = _epochsDone; epoch < _o.Epochs; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            var (loss, cls, box, aux, top1, ips) = TrainEpoch(epoch, cancel);
            _progress.Evaluating(epoch + 1);
            final = Evaluate();
            var m = new EpochMetrics(epoch + 1, loss, cls, box, aux, top1, final.Loss, final.Top1, final.Top5, final.MeanIoU, final.IoU50,
                final.ExpertLoad, _optimizer.LearningRate, epochClock.Elapsed.TotalSeconds, ips);
            _history.Add(m);
            _epochsDone = epoch + 1;
            SaveEpoch(m);
            _progress.EndEpoch(m);
            _reporter?.EpochFinished(RunDir, _history);
        }
        final ??= Evaluate();
        _reporter?.RunFinished(RunDir, ConfigJson, _history, final, _net.Config.EffectiveExperts);
        return new TrainResult(_history.ToList(), final, _bestTop1, _bestEpoch, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Evaluates the test split now.</summary>
    public EvalResult Evaluate() => Evaluator.Evaluate(_net, _test, _data.Test, _data.ClassNames, _o.Crop, _o.Resize, _o.Loss, _device, amp: _o.Amp);

    private (double Loss, double Cls, double Box, double Aux, double Top1, double Ips) TrainEpoch(int epoch, CancellationToken cancel)
    {
        _net.Train();
        _net.Backbone.KeepFrozenInEval();
        double lossSum = 0, clsSum = 0, boxSum = 0, auxSum = 0;
        int seen = 0, correct = 0, batches = 0;
        var clock = Stopwatch.StartNew();
        foreach (var batch in _train.Epoch(epoch))
        {
            using var _ = batch;
            if (batches >= StepsPerEpoch) break;
            cancel.ThrowIfCancellationRequested();
            BeforeStep?.Invoke(epoch, batches);
            _schedule.Apply(_optimizer, _globalStep);
            double value;
            using (DisposeScope.Begin())
            {
                var x = batch.Images.Device == _device ? batch.Images : batch.Images.To(_device);       // [B, 3, R, R]
                var labels = batch.Labels.Device == _device ? batch.Labels : batch.Labels.To(_device);  // [B]
                var boxes = batch.Boxes.Device == _device ? batch.Boxes : batch.Boxes.To(_device);      // [B, 4]
                _optimizer.ZeroGrad();
                NetOutput output;
                LossParts parts;
                using (AmpModes.Enter(_o.Amp))   // the forward pass and the loss; the backward runs without autocast
                {
                    output = _net.Run(x);
                    parts = MultiTaskLoss.Compute(_net, output, labels, boxes, _o.Loss);
                }
                value = parts.Value;
                if (!double.IsFinite(value))
                    throw new TrainingDivergedException(
                        $"training stopped: the loss became {value} at epoch {epoch + 1}, batch {batches + 1}/{StepsPerEpoch} " +
                        $"(class {parts.Class:G4}, box {parts.Box:G4}, aux {parts.Aux:G4}); " +
                        (_epochsDone > 0 ? $"the last good checkpoint {Path.Combine(RunDir, RunFiles.Last)} (epoch {_epochsDone}) is intact" : "no checkpoint had been written yet") +
                        " — try a lower --lr");
                parts.Total.Backward();
                _optimizer.Step();
                var logits = output.Logits.ToFloatArray();
                var y = batch.Labels.ToLongArray();
                int classes = logits.Length / y.Length;
                for (int r = 0; r < y.Length; r++)
                {
                    int arg = 0;
                    for (int c = 1; c < classes; c++) if (logits[r * classes + c] > logits[r * classes + arg]) arg = c;
                    if (arg == y[r]) correct++;
                }
                lossSum += value * y.Length; clsSum += parts.Class * y.Length; boxSum += parts.Box * y.Length; auxSum += parts.Aux * y.Length;
                seen += y.Length;
            }
            _globalStep++;
            batches++;
            _stepLosses.Add(value);
            _progress.Batch(epoch + 1, batches, lossSum / seen, (double)correct / seen, seen / clock.Elapsed.TotalSeconds);
        }
        return (lossSum / seen, clsSum / seen, boxSum / seen, auxSum / seen, (double)correct / seen, seen / clock.Elapsed.TotalSeconds);
    }

    private void SaveEpoch(EpochMetrics m)
    {
        bool isBest = m.TestTop1 > _bestTop1;
        if (isBest) { _bestTop1 = m.TestTop1; _bestEpoch = m.Epoch; }
        var rngs = _net.Rngs.ToDictionary(kv => kv.Key, kv => kv.Value.GetState());
        rngs["default"] = Rng.Default.GetState();
        var state = new TrainerState
        {
            Epoch = m.Epoch, GlobalStep = _globalStep, BestTop1 = _bestTop1, BestEpoch = _bestEpoch,
            Optimizer = _optimizer.Name, Rngs = rngs, History = _history.ToList(),
        };
        var opt = DisposeScope.Outside(_optimizer.StateTensors);
        try
        {
            var epochText = m.Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture);
            new RunCheckpoints(RunDir, FileOps).Save(new CheckpointContent(m.Epoch,
                path => RunFiles.SaveModel(path, _net, _data.ClassNames, m.Epoch),
                path => Safetensors.Save(path, opt, new Dictionary<string, string> { ["epoch"] = epochText, ["optimizer"] = _optimizer.Name }),
                isBest, JsonSerializer.Serialize(state, RunFiles.Json), ConfigJson));
        }
        finally { foreach (var t in opt.Values) t.Dispose(); }
        RunFiles.WriteMetricsCsv(Path.Combine(RunDir, RunFiles.Metrics), _history, FileOps);
        _progress.Message($"epoch {m.Epoch}: checkpoint written to {RunDir}");
    }

    /// <summary>Frees the optimizer state, stops the loaders and releases a lock it took (the network belongs to the caller).</summary>
    public void Dispose()
    {
        _optimizer.Dispose();
        _train.Dispose();
        _test.Dispose();
        _ownLock?.Dispose();
    }
}
