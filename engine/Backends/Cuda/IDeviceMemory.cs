namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// The raw device allocator under <see cref="CachingAllocator"/>: cuMemAlloc/cuMemFree on a GPU, a fake in tests.
/// Keeping it this small lets the bucket, cache and out-of-memory logic run (and be tested) without a GPU.
/// </summary>
public interface IDeviceMemory
{
    /// <summary>Allocates <paramref name="bytes"/> (&gt; 0); false on out-of-memory, an exception on any other failure.</summary>
    bool TryAlloc(long bytes, out ulong address);

    /// <summary>Frees an address <see cref="TryAlloc"/> returned.</summary>
    void Free(ulong address);
}

/// <summary>A device allocation failed even after the allocator's cache was emptied and the allocation retried.</summary>
public sealed class DeviceOutOfMemoryException(string message) : Exception(message);
