namespace MtlMoe.Engine.Amp;

/// <summary>
/// Autocast scopes, per thread: <c>using (Autocast.Enter(DType.BFloat16)) { … }</c> runs the ops inside under
/// <see cref="AutocastPolicy"/>; <see cref="Suspend"/> opens a scope with autocast off (the gate's float32 logits).
/// Scopes nest and must be disposed innermost first. Each thread starts with autocast off, so a data-loader thread
/// never inherits a training step's scope.
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

    private static Scope Push(DType? dtype)
    {
        var s = new Scope(dtype);
        (_stack ??= new Stack<Scope>()).Push(s);
        return s;
    }

    private sealed class Scope(DType? dtype) : IDisposable
    {
        public DType? DType { get; } = dtype;
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed) return;
            var stack = _stack;
            if (stack is null || stack.Count == 0 || !ReferenceEquals(stack.Peek(), this))
                throw new InvalidOperationException("autocast: scopes must be disposed innermost first, on the thread that opened them");
            stack.Pop();
            _disposed = true;
        }
    }
}
