namespace MtlMoe.Engine.Amp;

/// <summary>
/// Autocast scopes, per thread: <c>using (Autocast.Enter(DType.BFloat16)) { … }</c> runs the ops inside under
/// <see cref="AutocastPolicy"/>; <see cref="Suspend"/> opens a scope with autocast off (the gate's float32 logits).
/// Scopes nest and must be disposed innermost first. Each thread starts with autocast off, so a data-loader thread
/// never inherits a training step's scope.
/// <para>
/// An <see cref="Enter"/> scope keeps a cache of its weight casts: a leaf tensor that requires gradients (a float32
/// master weight) is cast to bf16 once per scope, however many ops read it, and every use shares that one cast node, so
/// the weight's gradient flows back through one cast backward (bf16 → float32). Open one scope per training step around
/// the forward pass and the loss; the cast copies are released when the scope ends (after the backward that needs them,
/// or with the dispose scope that was current when autocast was entered).
/// </para>
/// </summary>
public static class Autocast
{
    [ThreadStatic] private static Stack<Scope>? _stack;

    /// <summary>The autocast dtype in force on this thread; null when autocast is off.</summary>
    public static DType? Current => _stack is { Count: > 0 } s ? s.Peek().DType : null;

    /// <summary>True when a scope with a dtype is in force on this thread.</summary>
    public static bool IsEnabled => Current is not null;

    /// <summary>Opens a scope running <see cref="AmpRule.LowPrecision"/> ops in <paramref name="dtype"/> (bf16 only).</summary>
    public static IDisposable Enter(DType dtype)
    {
        if (dtype != DType.BFloat16)
            throw new ArgumentException($"autocast: the low-precision dtype must be bf16, not {dtype.Name()}");
        return Push(dtype);
    }

    /// <summary>Opens a scope with autocast off until it is disposed.</summary>
    public static IDisposable Suspend() => Push(null);

    /// <summary>Number of weight casts the innermost <see cref="Enter"/> scope holds (tests: one per weight per step).</summary>
    public static int CachedCasts => Innermost()?.CachedCount ?? 0;

    /// <summary>
    /// <paramref name="t"/> cast to <paramref name="to"/> for an op under autocast. A leaf that requires gradients, cast to
    /// the scope's low dtype, comes from the innermost scope's cache (made on first use; owned by the scope: the caller must
    /// not dispose it); anything else is a new cast the caller owns (<paramref name="owned"/>).
    /// </summary>
    internal static Tensor CastForOp(Tensor t, DType to, out bool owned)
    {
        var scope = Innermost();
        if (scope is not null && to == scope.DType && t.IsLeaf && t.RequiresGrad)
        {
            owned = false;
            return scope.CachedCast(t, to);
        }
        owned = true;
        return t.To(to);
    }

    private static Scope? Innermost()
    {
        if (_stack is not { Count: > 0 } s) return null;
        var top = s.Peek();
        return top.DType is null ? null : top;
    }

    private static Scope Push(DType? dtype)
    {
        var s = new Scope(dtype, DisposeScope.Current);
        (_stack ??= new Stack<Scope>()).Push(s);
        return s;
    }

    private sealed class Scope(DType? dtype, DisposeScope? owner) : IDisposable
    {
        private Dictionary<Tensor, Tensor>? _cache;
        private bool _disposed;

        public DType? DType { get; } = dtype;

        public int CachedCount => _cache?.Count ?? 0;

        public Tensor CachedCast(Tensor weight, DType to)
        {
            _cache ??= new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
            if (_cache.TryGetValue(weight, out var cast) && !cast.IsDisposed) return cast;
            // Made outside any inner dispose scope (a module's own scope would free it while it is still cached), then
            // owned by the scope that was current when autocast was entered, like the step's other temporaries.
            cast = DisposeScope.Outside(() => weight.To(to));
            owner?.Register(cast);
            _cache[weight] = cast;
            return cast;
        }

        public void Dispose()
        {
            if (_disposed) return;
            var stack = _stack;
            if (stack is null || stack.Count == 0 || !ReferenceEquals(stack.Peek(), this))
                throw new InvalidOperationException("autocast: scopes must be disposed innermost first, on the thread that opened them");
            stack.Pop();
            _disposed = true;
            if (_cache is null) return;
            foreach (var cast in _cache.Values) cast.Dispose();   // deferred while a recorded backward still needs it
            _cache = null;
        }
    }
}
