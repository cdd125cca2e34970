using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>Whether CUDA can be used on this machine, decided once and never by throwing.</summary>
public static class CudaRuntime
{
    static readonly Lazy<(bool Ok, string Reason, int Devices)> State = new(Probe);

    /// <summary>True when libcuda loads, cuInit succeeds and at least one device exists; otherwise <paramref name="reason"/> is one sentence saying why.</summary>
    public static bool IsAvailable(out string reason)
    {
        var s = State.Value;
        reason = s.Reason;
        return s.Ok;
    }

    /// <summary>Number of CUDA devices (0 where CUDA is unavailable).</summary>
    public static int DeviceCount => State.Value.Devices;

    /// <summary>Throws <see cref="DeviceUnavailableException"/> with the reason when CUDA is unavailable.</summary>
    public static void EnsureAvailable()
    {
        if (!IsAvailable(out var reason)) throw new DeviceUnavailableException($"CUDA device requested but {reason}");
    }

    static (bool, string, int) Probe()
    {
        try
        {
            if (!CudaLibraryResolver.TryLoad(CudaDriver.Library, out _, out var error))
                return (false, $"{error}: no NVIDIA driver on this machine", 0);
            var r = CudaDriver.cuInit(0);
            if (r != CuResult.Success)
                return (false, $"cuInit failed with {CudaDriver.Describe(r).Name}: the NVIDIA driver is present but unusable", 0);
            r = CudaDriver.cuDeviceGetCount(out var n);
            if (r != CuResult.Success) return (false, $"cuDeviceGetCount failed with {CudaDriver.Describe(r).Name}", 0);
            if (n == 0) return (false, "the NVIDIA driver reports no CUDA device", 0);
            return (true, $"{n} CUDA device(s)", n);
        }
        catch (Exception e)
        {
            return (false, $"probing CUDA failed: {e.GetType().Name}: {e.Message}", 0);
        }
    }
}
