namespace MtlMoe.Engine;

/// <summary>Live-tensor and live-byte counters, process wide; leak tests watch them.</summary>
public static class MemoryStats
{
    private static long _liveTensors;
    private static long _liveBytes;
    private static long _liveStorages;

    /// <summary>Tensor objects created and not yet disposed.</summary>
    public static long LiveTensors => Interlocked.Read(ref _liveTensors);
    /// <summary>Bytes of storages still referenced by some tensor.</summary>
    public static long LiveBytes => Interlocked.Read(ref _liveBytes);
    /// <summary>Storages still referenced by some tensor.</summary>
    public static long LiveStorages => Interlocked.Read(ref _liveStorages);

    internal static void OnTensorCreated() => Interlocked.Increment(ref _liveTensors);
    internal static void OnTensorDisposed() => Interlocked.Decrement(ref _liveTensors);
    internal static void OnStorageCreated(long bytes) { Interlocked.Add(ref _liveBytes, bytes); Interlocked.Increment(ref _liveStorages); }
    internal static void OnStorageFreed(long bytes) { Interlocked.Add(ref _liveBytes, -bytes); Interlocked.Decrement(ref _liveStorages); }
}
