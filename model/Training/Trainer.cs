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

    /// <summary>Test seam: called before each training step with (0-based epoch, 0-based batch).</summary>
    internal Action<int, int>? BeforeStep { get; set; }

    /// <summary>
    /// A trainer for <paramref name="net"/> (already on <see cref="TrainerOptions.Device"/>) writing into
    /// <paramref name="runDir"/>; <paramref name="configJson"/> becomes config.json. A null reporter writes no reports.
    /// </summary>
    public Trainer(MtlMoeNet net, CubDataset data, TrainerOptions options, string runDir, string configJson,
        ITrainingProgress progress, IRunReporter? reporter = null)
    {
        _net = net; _data = data; _o = options; _progress = progress; _reporter = reporter;
        RunDir = runDir; ConfigJson = configJson;
        _device = Device.Parse(options.Device);
        if (data.Train.Count == 0 || data.Test.Count == 0) throw new ArgumentException("trainer: the data set needs both train and test images");
        var batch = Math.Min(options.BatchSize, data.Train.Count);
        _train = new CubLoader(data.Train, CubTransforms.Train(options.Crop, options.Resize, options.ColorJitter),
            new CubLoaderOptions { BatchSize = batch, Shuffle = true, DropLast = true, Seed = options.Seed, Threads = options.Workers, CacheDecoded = options.CacheDecoded });
        _test = new CubLoader(data.Test, CubTransforms.Test(options.Crop, options.Resize),
            new CubLoaderOptions { BatchSize = options.BatchSize, Shuffle = false, Seed = options.Seed, Threads = options.Workers, CacheDecoded = options.CacheDecoded });
        StepsPerEpoch = options.MaxBatches > 0 ? Math.Min(options.MaxBatches, _train.BatchesPerEpoch) : _train.BatchesPerEpoch;
        _optimizer = options.Optimizer switch
        {
            "sgd" => new SGD(net.Parameters(), options.Lr, momentum: 0.9, weightDecay: options.WeightDecay, nesterov: false),
            "adamw" => new AdamW(net.Parameters(), options.Lr, weightDecay: options.WeightDecay),
            _ => throw new ArgumentException($"trainer: unknown optimizer '{options.Optimizer}' (expected sgd or adamw)"),
        };
        net.Backbone.Freeze(options.Freeze);
        if (options.BackboneLrScale != 1.0) _optimizer.ScaleLearningRate(net.Backbone.Parameters(), options.BackboneLrScale);
        long total = (long)options.Epochs * StepsPerEpoch;
        _schedule = LrSchedule.WarmupCosine(options.Lr, Math.Min(total - 1, (long)Math.Round(options.WarmupEpochs * StepsPerEpoch)), total);
    }

    /// <summary>
    /// Restores the model, optimizer moments, step, RNG states and history from <paramref name="runDir"/>'s last
    /// finished epoch. Throws when the checkpoint and the trainer state disagree (a crash while saving).
    /// </summary>
    public void Resume(string runDir)
    {
        string statePath = Path.Combine(runDir, RunFiles.State);
        if (!File.Exists(statePath)) throw new InvalidOperationException($"resume: {statePath} not found — no epoch of that run finished");
        var state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(statePath), RunFiles.Json)
            ?? throw new InvalidDataException($"resume: {statePath} is empty");
        var (_, _, ckptEpoch) = RunFiles.ReadModelMetadata(Path.Combine(runDir, RunFiles.Last));
        var (optTensors, optMeta) = DisposeScope.Outside(() => (Safetensors.Load(Path.Combine(runDir, RunFiles.OptimizerState), out var m), m));
        try
        {
            int optEpoch = optMeta.TryGetValue("epoch", out var e) ? int.Parse(e, System.Globalization.CultureInfo.InvariantCulture) : -1;
            if (ckptEpoch != state.Epoch || optEpoch != state.Epoch)
                throw new InvalidOperationException($"resume: {RunFiles.Last} is from epoch {ckptEpoch} and {RunFiles.OptimizerState} from epoch {optEpoch} but {RunFiles.State} says epoch {state.Epoch} — the run stopped while saving; it cannot continue exactly");
            if (state.Optimizer != _optimizer.Name) throw new InvalidOperationException($"resume: the run used {state.Optimizer}, this trainer {_optimizer.Name}");
            _net.LoadSafetensors(Path.Combine(runDir, RunFiles.Last), strict: true);
            _optimizer.LoadStateTensors(optTensors);
        }
        finally { foreach (var t in optTensors.Values) t.Dispose(); }
        foreach (var (name, rng) in _net.Rngs)
            if (state.Rngs.TryGetValue(name, out var s)) rng.SetState(s);
            else throw new InvalidDataException($"resume: no state for generator '{name}'");
        if (state.Rngs.TryGetValue("default", out var d)) Rng.Default.SetState(d);
        _history.Clear(); _history.AddRange(state.History);
        _epochsDone = state.Epoch; _globalStep = state.GlobalStep; _bestTop1 = state.BestTop1; _bestEpoch = state.BestEpoch;
        _progress.Message($"resumed from {runDir} after epoch {state.Epoch} (step {state.GlobalStep}, best top-1 {Math.Max(0, state.BestTop1):P1})");
    }

    /// <summary>Trains the remaining epochs, then reports. Cancellation stops between steps (nothing half-saved).</summary>
    public TrainResult Run(CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(RunDir);
        if (_epochsDone == 0) AtomicFile.WriteAllText(Path.Combine(RunDir, RunFiles.Config), ConfigJson);
        _progress.BeginRun($"{_net.Config.Variant} · {_net.Config.Backbone}×{_net.Config.Width} · {_o.Crop}px · {_device}", _o.Epochs, StepsPerEpoch);
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
    public EvalResult Evaluate() => Evaluator.Evaluate(_net, _test, _data.Test, _data.ClassNames, _o.Crop, _o.Resize, _o.Loss, _device);

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
                var output = _net.Run(x);
                var parts = MultiTaskLoss.Compute(_net, output, labels, boxes, _o.Loss);
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
        if (m.TestTop1 > _bestTop1)
        {
            _bestTop1 = m.TestTop1; _bestEpoch = m.Epoch;
            RunFiles.SaveModel(Path.Combine(RunDir, RunFiles.Best), _net, _data.ClassNames, m.Epoch);
        }
        // Order matters: checkpoint, optimizer state, then the JSON that commits the epoch. A crash in between
        // leaves files whose epochs disagree, which Resume detects.
        RunFiles.SaveModel(Path.Combine(RunDir, RunFiles.Last), _net, _data.ClassNames, m.Epoch);
        var opt = DisposeScope.Outside(_optimizer.StateTensors);
        try
        {
            Safetensors.Save(Path.Combine(RunDir, RunFiles.OptimizerState), opt,
                new Dictionary<string, string> { ["epoch"] = m.Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture), ["optimizer"] = _optimizer.Name });
        }
        finally { foreach (var t in opt.Values) t.Dispose(); }
        var rngs = _net.Rngs.ToDictionary(kv => kv.Key, kv => kv.Value.GetState());
        rngs["default"] = Rng.Default.GetState();
        var state = new TrainerState
        {
            Epoch = m.Epoch, GlobalStep = _globalStep, BestTop1 = _bestTop1, BestEpoch = _bestEpoch,
            Optimizer = _optimizer.Name, Rngs = rngs, History = _history.ToList(),
        };
        AtomicFile.WriteAllText(Path.Combine(RunDir, RunFiles.State), JsonSerializer.Serialize(state, RunFiles.Json));
        RunFiles.WriteMetricsCsv(Path.Combine(RunDir, RunFiles.Metrics), _history);
        _progress.Message($"epoch {m.Epoch}: checkpoint written to {RunDir}");
    }

    /// <summary>Frees the optimizer state and stops the loaders (the network belongs to the caller).</summary>
    public void Dispose()
    {
        _optimizer.Dispose();
        _train.Dispose();
        _test.Dispose();
    }
}
