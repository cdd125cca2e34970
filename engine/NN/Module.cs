namespace MtlMoe.Engine.NN;

/// <summary>
/// Base of every layer: named parameters, buffers and child modules, with hierarchical names
/// (<c>layer1.0.conv1.weight</c>, as torchvision names them), train/eval mode and device moves.
/// Parameters and buffers live outside dispose scopes and are freed by <see cref="Dispose"/>.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = new();
    private readonly List<(string Name, Tensor Tensor)> _buffers = new();
    private readonly List<(string Name, Module Module)> _children = new();

    /// <summary>True in training mode (batch statistics, dropout active).</summary>
    public bool Training { get; private set; } = true;

    /// <summary>The module's computation.</summary>
    public abstract Tensor Forward(Tensor x);

    /// <summary>Registers a trainable tensor under <paramref name="name"/>; it requires gradients from now on.</summary>
    protected Tensor RegisterParameter(string name, Tensor tensor)
    {
        CheckName(name);
        tensor.DetachFromScope();
        tensor.RequiresGrad = true;
        tensor.Name = name;
        _parameters.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers state that is saved but not trained (running statistics).</summary>
    protected Tensor RegisterBuffer(string name, Tensor tensor)
    {
        CheckName(name);
        tensor.DetachFromScope();
        tensor.Name = name;
        _buffers.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers a child module under <paramref name="name"/> (a path segment of its parameters' names).</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        _children.Add((name, module));
        return module;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"module member name '{name}' must be non-empty and contain no '.'");
        foreach (var (n, _) in _parameters) if (n == name) throw new ArgumentException($"'{name}' is already registered");
        foreach (var (n, _) in _buffers) if (n == name) throw new ArgumentException($"'{name}' is already registered");
        foreach (var (n, _) in _children) if (n == name) throw new ArgumentException($"'{name}' is already registered");
    }

    /// <summary>Direct children in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> Children() => _children;

    /// <summary>Every parameter of this module and its descendants, with dotted names.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters(string prefix = "")
    {
        foreach (var (n, t) in _parameters) yield return (prefix + n, t);
        foreach (var (n, m) in _children)
            foreach (var p in m.NamedParameters(prefix + n + ".")) yield return p;
    }

    /// <summary>Every buffer of this module and its descendants, with dotted names.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers(string prefix = "")
    {
        foreach (var (n, t) in _buffers) yield return (prefix + n, t);
        foreach (var (n, m) in _children)
            foreach (var b in m.NamedBuffers(prefix + n + ".")) yield return b;
    }

    /// <summary>Every module in the tree (this one first), with dotted names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix.TrimEnd('.'), this);
        foreach (var (n, m) in _children)
            foreach (var x in m.NamedModules(prefix + n + ".")) yield return x;
    }

    /// <summary>Every parameter tensor.</summary>
    public List<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor).ToList();

    /// <summary>Parameters and buffers by name: what a checkpoint holds.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (n, t) in NamedParameters()) d[n] = t;
        foreach (var (n, t) in NamedBuffers()) d[n] = t;
        return d;
    }

    /// <summary>
    /// Copies tensors by name into this module's parameters and buffers and reports what matched,
    /// what is missing, unexpected or shape-mismatched. With <paramref name="strict"/>, anything but a
    /// full match throws (after nothing has been copied).
    /// </summary>
    public LoadReport LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        var own = StateDict();
        var report = new LoadReport();
        foreach (var (name, t) in own)
        {
            if (!state.TryGetValue(name, out var src)) { report.Missing.Add(name); continue; }
            if (!Shapes.Equal(src.Shape, t.Shape)) { report.ShapeMismatched.Add($"{name}: checkpoint {Shapes.Format(src.Shape)}, model {Shapes.Format(t.Shape)}"); continue; }
            report.Matched.Add(name);
        }
        foreach (var name in state.Keys) if (!own.ContainsKey(name)) report.Unexpected.Add(name);
        if (strict && !report.IsExactMatch) throw new InvalidOperationException("load_state_dict: " + report);
        using var _ = Autograd.GradMode.NoGrad();
        foreach (var name in report.Matched)
        {
            var src = state[name];
            using var moved = src.Device == own[name].Device ? null : src.To(own[name].Device);
            own[name].CopyFrom(moved ?? src);
        }
        return report;
    }

    /// <summary>Sets training mode on this module and every descendant.</summary>
    public Module Train(bool on = true)
    {
        Training = on;
        foreach (var (_, m) in _children) m.Train(on);
        return this;
    }

    /// <summary>Sets evaluation mode (running statistics, no dropout).</summary>
    public Module Eval() => Train(false);

    /// <summary>Clears every parameter's gradient.</summary>
    public void ZeroGrad() { foreach (var p in Parameters()) p.ZeroGrad(); }

    /// <summary>Moves every parameter and buffer to <paramref name="device"/> in place (the tensor objects stay the same).</summary>
    public Module To(Device device)
    {
        foreach (var (_, t) in NamedParameters().Concat(NamedBuffers()))
        {
            if (t.Device == device) continue;
            using var _g = Autograd.GradMode.NoGrad();
            var moved = t.To(device);
            t.ReplaceStorage(moved.Storage, moved.Layout);
            moved.Storage.AddRef();
            moved.Dispose();
            t.Grad?.Dispose();
            t.Grad = null;
        }
        return this;
    }

    /// <summary>Total number of parameter elements.</summary>
    public long ParameterCount() => NamedParameters().Sum(p => (long)p.Tensor.Count);

    /// <summary>Disposes every parameter, buffer and gradient of the tree.</summary>
    public virtual void Dispose()
    {
        foreach (var (_, t) in _parameters) { t.Grad?.Dispose(); t.Grad = null; t.Dispose(); }
        foreach (var (_, t) in _buffers) t.Dispose();
        foreach (var (_, m) in _children) m.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>What <see cref="Module.LoadStateDict"/> matched and what it did not.</summary>
public sealed class LoadReport
{
    /// <summary>Names copied.</summary>
    public List<string> Matched { get; } = new();
    /// <summary>Model names absent from the checkpoint.</summary>
    public List<string> Missing { get; } = new();
    /// <summary>Checkpoint names the model does not have.</summary>
    public List<string> Unexpected { get; } = new();
    /// <summary>Names present on both sides with different shapes.</summary>
    public List<string> ShapeMismatched { get; } = new();
    /// <summary>True when every name matched with its shape.</summary>
    public bool IsExactMatch => Missing.Count == 0 && Unexpected.Count == 0 && ShapeMismatched.Count == 0;

    /// <summary>One line per category.</summary>
    public override string ToString() =>
        $"{Matched.Count} matched, {Missing.Count} missing [{string.Join(", ", Missing.Take(10))}], " +
        $"{Unexpected.Count} unexpected [{string.Join(", ", Unexpected.Take(10))}], " +
        $"{ShapeMismatched.Count} shape-mismatched [{string.Join("; ", ShapeMismatched.Take(10))}]";
}
