using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// cuProfilerStart/Stop: brackets a region for <c>nsys profile --capture-range=cudaProfilerApi</c> and
/// <c>ncu --profile-from-start off</c>. Both are no-ops where CUDA is unavailable.
/// </summary>
public static class CudaProfiler
{
    /// <summary>Starts profiler capture (waits for queued work first so that it is not attributed to the region).</summary>
    public static void Start(Device device)
    {
        if (!Usable(device, out var be)) return;
        be.Synchronize();
        CudaDriver.Check(CudaDriver.cuProfilerStart());
    }

    /// <summary>Stops profiler capture after the region's work has finished.</summary>
    public static void Stop(Device device)
    {
        if (!Usable(device, out var be)) return;
        be.Synchronize();
        CudaDriver.Check(CudaDriver.cuProfilerStop());
    }

    /// <summary>Waits for every queued operation of <paramref name="device"/> (no-op on the CPU): for timing.</summary>
    public static void Synchronize(Device device)
    {
        if (Usable(device, out var be)) be.Synchronize();
    }

    static bool Usable(Device device, out CudaBackend backend)
    {
        backend = null!;
        if (device.Type != DeviceType.Cuda) return false;
        backend = (CudaBackend)Backends.BackendRegistry.Get(device);
        backend.Context.MakeCurrent();
        return true;
    }

    /// <summary>Peak DRAM bandwidth of a CUDA device in GB/s (memory clock × bus width × 2), or null on the CPU.</summary>
    public static double? PeakBandwidthGBps(Device device) =>
        Usable(device, out var be) ? be.Context.PeakBandwidthBytesPerSecond() / 1e9 : null;
}
