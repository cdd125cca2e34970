using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Engine.Backends;

/// <summary>
/// Finds the backend for a device. By default the CPU is <see cref="CpuBackend.Default"/> (options from the
/// environment) and CUDA device N the backend built on its first use (<see cref="CudaBackend"/>, default options).
/// A flow — a test, a benchmark, a command — installs its own backend with <see cref="Use"/>: until the returned scope
/// is disposed, every tensor op of that flow on that backend's device goes to it, including ops on threads and tasks the
/// flow starts (the choice travels with the ExecutionContext, like an AsyncLocal). Parallel flows each see their own.
/// </summary>
public static class BackendRegistry
{
    private static readonly object Gate = new();
    private static readonly Dictionary<int, CudaBackend> Cuda = new();
    private static readonly AsyncLocal<Installed?> Current = new();

    // The backends a flow installed, innermost first.
    private sealed record Installed(IBackend Backend, Installed? Outer);

    /// <summary>The backend for <paramref name="device"/>: the innermost one the current flow installed for it, else the default; a clear error when it is absent.</summary>
    public static IBackend Get(Device device)
    {
        for (var i = Current.Value; i is not null; i = i.Outer)
            if (i.Backend.Device == device) return i.Backend;
        if (device.Type == DeviceType.Cpu) return CpuBackend.Default;
        lock (Gate)
        {
            if (Cuda.TryGetValue(device.Index, out var b)) return b;
            b = CudaBackend.Create(device.Index);
            Cuda[device.Index] = b;
            return b;
        }
    }

    /// <summary>The CPU backend of the current flow.</summary>
    public static IBackend Cpu => Get(Engine.Device.Cpu);

    /// <summary>
    /// Makes <paramref name="backend"/> the backend for its device in the current flow until the returned scope is
    /// disposed (scopes nest; dispose them in reverse order). A method that installs one without disposing it leaves it
    /// installed for the rest of its caller's flow (a command's run, say).
    /// </summary>
    public static IDisposable Use(IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var outer = Current.Value;
        Current.Value = new Installed(backend, outer);
        return new Scope(outer);
    }

    private sealed class Scope(Installed? outer) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            Current.Value = outer;
        }
    }
}
