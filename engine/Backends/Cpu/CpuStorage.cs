using System.Collections.Concurrent;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>Host memory: a managed array of the dtype's element type, returned to a pool when freed.</summary>
public sealed class CpuStorage : Storage
{
    private Array? _data;

    internal CpuStorage(Array data, DType dtype, int length) : base(dtype, length) { _data = data; }

    /// <summary>
    /// A host buffer of <paramref name="length"/> elements from the CPU storage pool, its contents unspecified unless
    /// <paramref name="zero"/>: fill it through <see cref="Array{T}"/>, then hand it to <see cref="Tensor.FromStorage"/>,
    /// which takes over its reference (a data loader writes a batch straight into the tensor's memory this way).
    /// </summary>
    public static CpuStorage Rent(DType dtype, int length, bool zero = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return new(CpuArrayPool.Rent(dtype, length, zero), dtype, length);
    }

    /// <inheritdoc />
    public override Device Device => Device.Cpu;

    /// <summary>The backing array (may be longer than <see cref="Storage.Length"/> never; exact length).</summary>
    public Array Data => _data ?? throw new ObjectDisposedException(nameof(CpuStorage));

    /// <summary>The backing array typed.</summary>
    public T[] Array<T>() where T : unmanaged => (T[])Data;

    /// <inheritdoc />
    protected override void Free()
    {
        var d = _data;
        _data = null;
        if (d is not null) CpuArrayPool.Return(d, DType);
    }
}

/// <summary>
/// Exact-length pool of host arrays so that a training loop's repeated shapes reuse memory instead
/// of stressing the GC. Bounded in bytes; arrays past the bound are left to the GC.
/// </summary>
internal static class CpuArrayPool
{
    private const long MaxPooledBytes = 3L << 30;
    private const int MinPooledElements = 1024;
    private static readonly ConcurrentDictionary<(DType, int), ConcurrentBag<Array>> Pools = new();
    private static long _pooledBytes;

    /// <summary>An array of exactly <paramref name="length"/> elements; zeroed when <paramref name="zero"/>.</summary>
    public static Array Rent(DType dtype, int length, bool zero)
    {
        if (length >= MinPooledElements && Pools.TryGetValue((dtype, length), out var bag) && bag.TryTake(out var a))
        {
            Interlocked.Add(ref _pooledBytes, -(long)length * dtype.SizeOf());
            if (zero) System.Array.Clear(a);
            return a;
        }
        return dtype switch
        {
            DType.Float32 => zero ? new float[length] : GC.AllocateUninitializedArray<float>(length),
            DType.Float64 => zero ? new double[length] : GC.AllocateUninitializedArray<double>(length),
            DType.Int32 => zero ? new int[length] : GC.AllocateUninitializedArray<int>(length),
            DType.Int64 => zero ? new long[length] : GC.AllocateUninitializedArray<long>(length),
            DType.BFloat16 => zero ? new BFloat16[length] : GC.AllocateUninitializedArray<BFloat16>(length),
            _ => throw new NotSupportedException($"cpu storage: dtype {dtype.Name()} has no host array type"),
        };
    }

    public static void Return(Array a, DType dtype)
    {
        int length = a.Length;
        if (length < MinPooledElements) return;
        long bytes = (long)length * dtype.SizeOf();
        if (Interlocked.Add(ref _pooledBytes, bytes) > MaxPooledBytes) { Interlocked.Add(ref _pooledBytes, -bytes); return; }
        Pools.GetOrAdd((dtype, length), _ => new ConcurrentBag<Array>()).Add(a);
    }

    /// <summary>Drops every pooled array.</summary>
    public static void Clear() { Pools.Clear(); Interlocked.Exchange(ref _pooledBytes, 0); }
}
