namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// Per-device caching allocator. Requests are rounded to a bucket size — the next power of two (at least 512 B)
/// below <see cref="LargeThreshold"/>, a multiple of 512 B from it on (at most 511 B wasted on big blocks, while
/// small, short-lived tensors of similar sizes share buckets) — and freed blocks wait in a per-bucket free list
/// for the next request of the same bucket. All work is ordered on the device's single compute stream, so a
/// block freed by the host can be handed to the next kernel at once. On out-of-memory the whole cache is given
/// back to the device and the allocation retried once; a second failure throws
/// <see cref="DeviceOutOfMemoryException"/> stating the requested, in-use and cached bytes. Thread-safe.
/// <para>
/// CUDA graphs (<see cref="BeginCapture"/>): while a stream capture records a step, nothing may reach the device's
/// allocator (cuMemAlloc/cuMemFree are illegal then, and a block the graph writes must never serve anyone else while
/// the graph can replay). So during a capture every request is served from the cache — first from blocks the capture
/// itself already freed, then from the blocks earlier (eager) runs of the step left cached — and a request the cache
/// cannot serve is a <see cref="GraphCaptureException"/> naming the size. Every block handed out or freed
/// during the capture belongs to the returned <see cref="GraphPool"/> from then on: freed blocks wait in the pool, not in
/// the cache, until the pool is released with the graph (<see cref="ReleasePool"/>).
/// </para>
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
    readonly Dictionary<ulong, GraphPool> _graphOwned = new();
    GraphPool? _capturing;

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
            if (_capturing is { } pool)
            {
                a = pool.TakeFree(size) ?? TakeCachedForCapture(size, bytes, pool);
                _live.Add(a, size);
                _graphOwned[a] = pool;
                pool.Blocks.Add(a);
                InUseBytes += size;
                if (InUseBytes > PeakInUseBytes) PeakInUseBytes = InUseBytes;
                return (a, size);
            }
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
            // A graph's block (or any block freed while a capture records) stays reserved for that graph.
            var owner = _graphOwned.GetValueOrDefault(address) ?? _capturing;
            if (owner is not null)
            {
                if (!_graphOwned.ContainsKey(address)) { _graphOwned[address] = owner; owner.Blocks.Add(address); }
                owner.PutFree(size, address);
                return;
            }
            if (!_free.TryGetValue(size, out var stack)) _free[size] = stack = new Stack<ulong>();
            stack.Push(address);
            CachedBytes += size;
        }
    }

    /// <summary>Gives every cached block back to the device.</summary>
    public void EmptyCache()
    {
        lock (_gate)
        {
            if (_capturing is not null) throw new GraphCaptureException($"{_deviceName}: the cache cannot be emptied while a CUDA graph is being captured");
            EmptyCacheLocked();
        }
    }

    /// <summary>True while a capture is recording (allocations come from the cache only).</summary>
    public bool Capturing { get { lock (_gate) return _capturing is not null; } }

    /// <summary>
    /// Starts serving a CUDA graph capture: until <see cref="EndCapture"/>, requests come from the cache only and every
    /// block handed out or freed joins the returned pool.
    /// </summary>
    public GraphPool BeginCapture()
    {
        lock (_gate)
        {
            if (_capturing is not null) throw new InvalidOperationException($"{_deviceName}: a CUDA graph capture is already recording");
            return _capturing = new GraphPool();
        }
    }

    /// <summary>Ends the capture <paramref name="pool"/> serves; its blocks stay reserved until <see cref="ReleasePool"/>.</summary>
    public void EndCapture(GraphPool pool)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(_capturing, pool)) throw new InvalidOperationException($"{_deviceName}: that pool is not the capture in progress");
            _capturing = null;
        }
    }

    /// <summary>
    /// The graph is gone: its free blocks return to the cache, and its blocks still in use return there when freed.
    /// </summary>
    public void ReleasePool(GraphPool pool)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_capturing, pool)) _capturing = null;
            foreach (var a in pool.Blocks) _graphOwned.Remove(a);
            foreach (var (size, a) in pool.DrainFree())
            {
                if (!_free.TryGetValue(size, out var stack)) _free[size] = stack = new Stack<ulong>();
                stack.Push(a);
                CachedBytes += size;
            }
            pool.Blocks.Clear();
        }
    }

    ulong TakeCachedForCapture(long size, long bytes, GraphPool pool)
    {
        if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
        {
            CachedBytes -= size;
            CacheHits++;
            return stack.Pop();
        }
        throw new GraphCaptureException(
            $"{_deviceName}: a CUDA graph capture needs a block of {bytes} bytes (bucket {size}) and the cache has none free " +
            $"(cached {CachedBytes} B in other sizes; the capture's own pool holds {pool.FreeBytes} B free): run the step eagerly " +
            "once more before capturing so that every block it needs is cached, and keep the captured step's shapes static");
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

/// <summary>
/// The device blocks of one CUDA graph: everything allocated or freed while it was captured. Free ones serve later
/// requests of the same capture and are otherwise held for the graph until <see cref="CachingAllocator.ReleasePool"/>.
/// </summary>
public sealed class GraphPool
{
    readonly Dictionary<long, Stack<ulong>> _free = new();

    /// <summary>Every block of the graph (live or free).</summary>
    internal HashSet<ulong> Blocks { get; } = new();

    /// <summary>Bytes of the graph's blocks that are free (reusable by the capture, reserved for the graph).</summary>
    public long FreeBytes { get; private set; }

    /// <summary>Number of blocks the graph holds.</summary>
    public int BlockCount => Blocks.Count;

    internal ulong? TakeFree(long size)
    {
        if (!_free.TryGetValue(size, out var s) || s.Count == 0) return null;
        FreeBytes -= size;
        return s.Pop();
    }

    internal void PutFree(long size, ulong address)
    {
        if (!_free.TryGetValue(size, out var s)) _free[size] = s = new Stack<ulong>();
        s.Push(address);
        FreeBytes += size;
    }

    internal IEnumerable<(long Size, ulong Address)> DrainFree()
    {
        foreach (var (size, stack) in _free)
            while (stack.Count > 0) yield return (size, stack.Pop());
        _free.Clear();
        FreeBytes = 0;
    }
}

/// <summary>A CUDA graph capture met something a graph cannot hold: an allocation the cache cannot serve, a host copy, a synchronisation.</summary>
public sealed class GraphCaptureException : Exception
{
    /// <summary>An error with a message naming what was refused.</summary>
    public GraphCaptureException(string message) : base(message) { }

    /// <summary>An error wrapping the exception that broke the capture.</summary>
    public GraphCaptureException(string message, Exception inner) : base(message, inner) { }
}
