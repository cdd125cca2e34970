using MtlMoe.Engine.Autograd;
using System.Globalization;

namespace MtlMoe.Engine.Optim;

/// <summary>
/// Base of the optimizers: a fixed list of parameters, a learning rate, per-parameter state tensors
/// (owned here, outside every dispose scope) and a checkpointable state dict. Each parameter's
/// update is one fused backend primitive; parameters without a gradient are skipped.
/// </summary>
public abstract class Optimizer : IDisposable
{
    private readonly List<Tensor> _parameters;

    /// <summary>Optimizes <paramref name="parameters"/> (float tensors, each listed once) with learning rate <paramref name="lr"/>.</summary>
    protected Optimizer(IEnumerable<Tensor> parameters, double lr, string name)
    {
        Name = name;
        _parameters = parameters.ToList();
        if (_parameters.Count == 0) throw new ArgumentException($"{name}: got an empty parameter list");
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i];
            if (!seen.Add(p)) throw new ArgumentException($"{name}: parameter {i} {Shapes.Format(p.Shape)} appears more than once");
            if (!p.DType.IsFloat()) throw new ArgumentException($"{name}: parameter {i} {Shapes.Format(p.Shape)} is {p.DType.Name()}, not float");
        }
        LearningRate = lr;
        _lrScale = new double[_parameters.Count];
        Array.Fill(_lrScale, 1.0);
    }

    private readonly double[] _lrScale;

    /// <summary>
    /// Multiplies the learning rate of the parameters in <paramref name="group"/> by <paramref name="scale"/> (a
    /// parameter group: e.g. a pretrained backbone at a tenth of the heads' rate); schedules keep setting the base rate.
    /// </summary>
    public void ScaleLearningRate(IEnumerable<Tensor> group, double scale)
    {
        if (!(scale >= 0) || !double.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, $"{Name}: learning-rate scale must be finite and ≥ 0");
        var index = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < _parameters.Count; i++) index[_parameters[i]] = i;
        foreach (var p in group)
            _lrScale[index.TryGetValue(p, out int i) ? i : throw new ArgumentException($"{Name}: a tensor {Shapes.Format(p.Shape)} of the group is not one of the optimizer's parameters")] = scale;
    }

    /// <summary>The learning rate of parameter <paramref name="index"/> in the next step (base rate × its group's scale).</summary>
    protected double LearningRateOf(int index) => _lr * _lrScale[index];

    /// <summary>Optimizer name used in messages ("sgd", "adamw").</summary>
    public string Name { get; }

    /// <summary>The parameters, in the order their state is numbered.</summary>
    public IReadOnlyList<Tensor> Parameters => _parameters;

    private double _lr;

    /// <summary>Learning rate of the next <see cref="Step"/> (schedules set it each step).</summary>
    public double LearningRate
    {
        get => _lr;
        set => _lr = value >= 0 && double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(nameof(value), value, $"{Name}: learning rate must be finite and ≥ 0");
    }

    /// <summary>Number of <see cref="Step"/> calls so far (restored by <see cref="LoadStateTensors"/>).</summary>
    public long StepCount { get; protected set; }

    /// <summary>Updates every parameter that has a gradient; parameters without one are skipped.</summary>
    public void Step()
    {
        using var _ = Autograd.GradMode.NoGrad();
        OpProfile.Lap("(between backward and step)");
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i];
            var g = p.Grad;
            if (g is null) continue;
            if (!Shapes.Equal(g.Shape, p.Shape)) throw new ShapeException($"{Name}: gradient {Shapes.Format(g.Shape)} of parameter {i} {Shapes.Format(p.Shape)} has another shape");
            if (g.Device != p.Device || g.DType != p.DType) throw new InvalidOperationException($"{Name}: gradient of parameter {i} {Shapes.Format(p.Shape)} is {g.DType.Name()} on {g.Device}, the parameter {p.DType.Name()} on {p.Device}");
            if (!p.IsContiguous) throw new InvalidOperationException($"{Name}: parameter {i} {Shapes.Format(p.Shape)} is not contiguous");
            var dense = g.IsContiguous ? null : DisposeScope.Outside(() => g.Contiguous());
            try { Update(i, p, dense ?? g); }
            finally { dense?.Dispose(); }
        }
        StepCount++;
        OpProfile.Lap("optimizer step");
    }

    /// <summary>Applies one update to parameter <paramref name="index"/> with its contiguous gradient.</summary>
    protected abstract void Update(int index, Tensor param, Tensor grad);

    /// <summary>Clears (disposes) every parameter's gradient.</summary>
    public void ZeroGrad() { foreach (var p in _parameters) p.ZeroGrad(); }

    /// <summary>
    /// The optimizer's state as tensors for a checkpoint: "step" (int64 scalar), "lr" (float64 scalar) and
    /// "state.&lt;param index&gt;.&lt;field&gt;" per parameter. The tensors are copies the caller owns.
    /// </summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var d = new Dictionary<string, Tensor>();
        DisposeScope.Outside(() =>
        {
            d["step"] = Tensor.FromArray(new[] { StepCount }, []);
            d["lr"] = Tensor.FromArray(new[] { LearningRate }, []);
            AddParamState(d);
            return 0;
        });
        return d;
    }

    /// <summary>Adds copies of the per-parameter state ("state.i.field") to <paramref name="d"/>.</summary>
    protected abstract void AddParamState(Dictionary<string, Tensor> d);

    /// <summary>
    /// Restores state written by <see cref="StateTensors"/>. Everything is checked before anything changes:
    /// unknown names, parameter indices out of range and shapes that differ from the parameter's throw.
    /// </summary>
    public void LoadStateTensors(IReadOnlyDictionary<string, Tensor> state)
    {
        var perParam = new Dictionary<(int, string), Tensor>();
        foreach (var (name, t) in state)
        {
            if (name is "step" or "lr")
            {
                if (t.Count != 1) throw new ShapeException($"{Name}: state '{name}' must hold one value, got {Shapes.Format(t.Shape)}");
                continue;
            }
            var parts = name.Split('.');
            if (parts.Length != 3 || parts[0] != "state" || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int i))
                throw new ArgumentException($"{Name}: unexpected state entry '{name}'");
            if (i >= _parameters.Count) throw new ArgumentException($"{Name}: state entry '{name}' names parameter {i}, but there are {_parameters.Count}");
            if (!IsStateField(parts[2])) throw new ArgumentException($"{Name}: unknown state field '{parts[2]}' in '{name}'");
            var expected = parts[2] == "step" ? Array.Empty<int>() : _parameters[i].Shape;
            if (!Shapes.Equal(t.Shape, expected) && !(parts[2] == "step" && t.Count == 1))
                throw new ShapeException($"{Name}: state '{name}' has shape {Shapes.Format(t.Shape)} but parameter {i} needs {Shapes.Format(expected)}");
            perParam[(i, parts[2])] = t;
        }
        ValidateParamState(perParam);
        if (state.TryGetValue("step", out var s)) StepCount = (long)s.Item();
        if (state.TryGetValue("lr", out var lr)) LearningRate = lr.Item();
        using var _ = Autograd.GradMode.NoGrad();
        LoadParamState(perParam);
    }

    /// <summary>True for the per-parameter field names this optimizer keeps.</summary>
    protected abstract bool IsStateField(string field);

    /// <summary>Checks that the fields given per parameter form a consistent state (throws otherwise); nothing is changed yet.</summary>
    protected virtual void ValidateParamState(IReadOnlyDictionary<(int Index, string Field), Tensor> state) { }

    /// <summary>Replaces the per-parameter state with <paramref name="state"/> (already validated).</summary>
    protected abstract void LoadParamState(IReadOnlyDictionary<(int Index, string Field), Tensor> state);

    /// <summary>A zero buffer shaped like parameter <paramref name="p"/>, owned by the optimizer (outside every scope).</summary>
    protected static Tensor NewBuffer(Tensor p) => DisposeScope.Outside(() => Tensor.Zeros(p.Shape, p.DType, p.Device));

    /// <summary>A copy of a state buffer for <see cref="StateTensors"/>.</summary>
    protected static Tensor CopyOf(Tensor t) => t.Clone();

    /// <summary>A buffer for parameter <paramref name="p"/> holding <paramref name="src"/>'s values.</summary>
    protected static Tensor BufferFrom(Tensor p, Tensor src)
    {
        var b = NewBuffer(p);
        using var moved = src.Device == p.Device ? null : DisposeScope.Outside(() => src.To(p.Device));
        b.CopyFrom(moved ?? src);
        return b;
    }

    /// <summary>Frees the state tensors.</summary>
    protected abstract void DisposeState();

    /// <summary>Frees the optimizer's state (not the parameters).</summary>
    public void Dispose() { DisposeState(); GC.SuppressFinalize(this); }
}
