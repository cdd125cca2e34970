namespace MtlMoe.Engine;

/// <summary>
/// Collects every tensor created on this thread while it is the innermost scope and disposes them
/// when it ends, so a training step's temporaries go back to the pool at once.
/// Keep a tensor past the scope with <see cref="Tensor.DetachFromScope"/> or <see cref="Tensor.MoveToOuterScope"/>.
/// </summary>
public sealed class DisposeScope : IDisposable
{
    [ThreadStatic] private static DisposeScope? _current;
    private readonly DisposeScope? _outer;
    private readonly List<Tensor> _tensors = new();
    private bool _disposed;

    private DisposeScope(DisposeScope? outer) { _outer = outer; }

    /// <summary>The innermost open scope on this thread, or null.</summary>
    public static DisposeScope? Current => _current;

    /// <summary>Opens a scope; dispose it to free what was created inside.</summary>
    public static DisposeScope Begin()
    {
        var s = new DisposeScope(_current);
        _current = s;
        return s;
    }

    /// <summary>Number of tensors this scope still owns.</summary>
    public int Count { get { int n = 0; foreach (var t in _tensors) if (t.OwningScope == this && !t.IsDisposed) n++; return n; } }

    internal DisposeScope? Outer => _outer;

    internal void Register(Tensor t) { t.OwningScope = this; _tensors.Add(t); }

    /// <summary>Disposes every tensor still owned by this scope and closes it.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_current == this) _current = _outer;
        foreach (var t in _tensors)
            if (t.OwningScope == this) t.DisposeNow();
        _tensors.Clear();
    }

    /// <summary>Runs <paramref name="make"/> with no scope active, so what it creates outlives every scope.</summary>
    public static T Outside<T>(Func<T> make)
    {
        var saved = _current;
        _current = null;
        try { return make(); } finally { _current = saved; }
    }
}
