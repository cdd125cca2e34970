namespace MtlMoe.Engine.NN;

/// <summary>Runs child modules in order; children are named "0", "1", … as in PyTorch.</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> _modules = new();

    /// <summary>A chain of <paramref name="modules"/>.</summary>
    public Sequential(params Module[] modules)
    {
        foreach (var m in modules) Add(m);
    }

    /// <summary>Appends a module under the next index.</summary>
    public Sequential Add(Module m)
    {
        RegisterModule(_modules.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), m);
        _modules.Add(m);
        return this;
    }

    /// <summary>Number of children.</summary>
    public int Count => _modules.Count;

    /// <summary>Child <paramref name="i"/>.</summary>
    public Module this[int i] => _modules[i];

    /// <inheritdoc />
    public override Tensor Forward(Tensor x)
    {
        var h = x;
        foreach (var m in _modules)
        {
            var next = m.Forward(h);
            if (!ReferenceEquals(h, x) && !ReferenceEquals(h, next)) h.Dispose();
            h = next;
        }
        // An empty chain still returns a new tensor (a tracked view), so callers may dispose it.
        return ReferenceEquals(h, x) ? x.Reshape(x.Shape) : h;
    }
}
