namespace MtlMoe.Engine.Autograd;

/// <summary>Per-thread switch for recording ops; <c>using (GradMode.NoGrad())</c> turns it off for a block.</summary>
public static class GradMode
{
    [ThreadStatic] private static bool _disabled;

    /// <summary>True when ops on tensors that require gradients are recorded.</summary>
    public static bool IsEnabled => !_disabled;

    /// <summary>Disables recording until the returned handle is disposed.</summary>
    public static IDisposable NoGrad() => new Switch(false);

    /// <summary>Enables recording until the returned handle is disposed.</summary>
    public static IDisposable EnableGrad() => new Switch(true);

    private sealed class Switch : IDisposable
    {
        private readonly bool _savedDisabled;
        private bool _done;
        public Switch(bool enabled) { _savedDisabled = _disabled; _disabled = !enabled; }
        public void Dispose() { if (_done) return; _done = true; _disabled = _savedDisabled; }
    }
}
