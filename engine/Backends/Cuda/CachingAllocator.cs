namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// Per-device caching allocator. Requests are rounded to a bucket size — the next power of two (at least 512 B)
/// below <see cref="LargeThreshold"/>, a multiple of 512 B from it on (at most 511 B wasted on big blocks, while
/// small, short-lived tensors of similar sizes share buckets) — and freed blocks wait in a per-bucket free list
/// for the next request of the same bucket. All work is ordered on the device's single compute stream, so a
/// block freed by the host can be handed to the next kernel at once. On out-of-memory the whole cache is given
/// back to the device and the allocation retried once; a second failure throws
/// <see cref="DeviceOutOfMemoryException"/> stating the requested, in-use and cached bytes. Thread-safe.
/// </summary>
public sealed class CachingAllocator
{
    /// <summary>Smallest bucket and the granularity of large buckets.</summary>
    public const long Granule = 512;
    /// <summary>Requests of at least this many bytes round to a multiple of <see cref="Granule"/>; smaller ones to a power of two.</summary>
    public const long LargeThreshold = 1L << 20;

    readonly IDeviceMemory _memory;
    readonly string _deviceName;
    readonly object _gate = new();
    readonly Dictionary<long, Stack<ulong>> _free = new();
    readonly Dictionary<ulong, long> _live = new();

    /// <summary>Creates an allocator over <paramref name="memory"/>; <paramref name="deviceName"/> ("cuda:0") appears in errors.</summary>
    public CachingAllocator(IDeviceMemory memory, string deviceName)
    {
        _memory = memory;
        _deviceName = deviceName;
    }

    /// <summary>Bytes of blocks handed out and not yet freed (bucket sizes).</summary>
    public long InUseBytes { get; private set; }
    /// <summary>Bytes of freed blocks kept for reuse.</summary>
    public long CachedBytes { get; private set; }
    /// <summary>Highest <see cref="InUseBytes"/> seen.</summary>
    public long PeakInUseBytes { get; private set; }
    /// <summary>Allocations served from the cache.</summary>
    public long CacheHits { get; private set; }
    /// <summary>Allocations that went to the device.</summary>
    public long DeviceAllocations { get; private set; }

    /// <summary>The bucket a request of <paramref name="bytes"/> is rounded to.</summary>
    public static long BucketSize(long bytes)
    {
        if (bytes <= Granule) return Granule;
        if (bytes >= LargeThreshold) return (bytes + Granule - 1) / Granule * Granule;
        long b = Granule;
        while (b < bytes) b <<= 1;
        return b;
    }

    /// <summary>A block of at least <paramref name="bytes"/> (&gt; 0) bytes; its address and bucket size.</summary>
    public (ulong Address, long Size) Allocate(long bytes)
    {
        if (bytes <= 0) throw new ArgumentOutOfRangeException(nameof(bytes), $"{_deviceName}: allocation of {bytes} bytes");
        long size = BucketSize(bytes);
        lock (_gate)
        {
            ulong a;
            if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                a = stack.Pop();
                CachedBytes -= size;
                CacheHits++;
            }
            else if (_memory.TryAlloc(size, out a)) DeviceAllocations++;
            else
            {
                long cachedBefore = CachedBytes;
                EmptyCacheLocked();
                if (!_memory.TryAlloc(size, out a))
                    throw new DeviceOutOfMemoryException(
                        $"{_deviceName}: out of memory allocating {bytes} bytes (bucket {size}); in use {InUseBytes} bytes, " +
                        $"cached {cachedBefore} bytes (the cache was freed and the allocation retried once), peak in use {PeakInUseBytes} bytes");
                DeviceAllocations++;
            }
            _live.Add(a, size);
            InUseBytes += size;
            if (InUseBytes > PeakInUseBytes) PeakInUseBytes = InUseBytes;
            return (a, size);
        }
    }

    /// <summary>Returns a block to the cache (never to the device: see <see cref="EmptyCache"/>).</summary>
    public void Free(ulong address)
    {
        lock (_gate)
        {
            if (!_live.Remove(address, out var size))
                throw new InvalidOperationException($"{_deviceName}: free of 0x{address:x}, which this allocator did not hand out (or freed twice)");
            InUseBytes -= size;
            if (!_free.TryGetValue(size, out var stack)) _free[size] = stack = new Stack<ulong>();
            stack.Push(address);
            CachedBytes += size;
        }
    }

    /// <summary>Gives every cached block back to the device.</summary>
    public void EmptyCache()
    {
        lock (_gate) EmptyCacheLocked();
    }

    void EmptyCacheLocked()
    {
        foreach (var stack in _free.Values)
            while (stack.Count > 0) _memory.Free(stack.Pop());
        _free.Clear();
        CachedBytes = 0;
    }

    /// <summary>"cuda:0 allocator: in use …, cached …, peak …".</summary>
    public override string ToString()
    {
        lock (_gate)
            return $"{_deviceName} allocator: in use {InUseBytes} B, cached {CachedBytes} B, peak {PeakInUseBytes} B, {DeviceAllocations} device allocations, {CacheHits} cache hits";
    }
}
