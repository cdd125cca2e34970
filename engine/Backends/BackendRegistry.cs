using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Engine.Backends;

/// <summary>Finds the backend for a device. CUDA registers a factory when its assembly part is loaded.</summary>
public static class BackendRegistry
{
    private static readonly object Gate = new();
    private static readonly Dictionary<Device, IBackend> Backends = new();

    /// <summary>Creates the backend for a CUDA device index, or throws <see cref="DeviceUnavailableException"/>.</summary>
    public static Func<int, IBackend>? CudaFactory { get; set; }

    /// <summary>The backend for <paramref name="device"/>; a clear error when it is absent.</summary>
    public static IBackend Get(Device device)
    {
        if (device.Type == DeviceType.Cpu) return CpuBackend.Instance;
        lock (Gate)
        {
            if (Backends.TryGetValue(device, out var b)) return b;
            var factory = CudaFactory ?? throw new DeviceUnavailableException(
                $"device {device} was requested but this build has no CUDA backend registered; use --device cpu");
            b = factory(device.Index);
            Backends[device] = b;
            return b;
        }
    }
}
