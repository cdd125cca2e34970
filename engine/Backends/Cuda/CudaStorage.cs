using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>Device memory of one CUDA device, taken from and given back to its <see cref="CachingAllocator"/>.</summary>
public sealed class CudaStorage : Storage
{
    readonly CudaContext _context;
    ulong _address;

    CudaStorage(CudaContext context, DType dtype, int length, ulong address) : base(dtype, length)
    {
        _context = context;
        _address = address;
    }

    /// <summary>Uninitialised device memory for <paramref name="length"/> elements (allocated before the storage counts as live).</summary>
    internal static CudaStorage Create(CudaContext context, DType dtype, int length)
    {
        ulong a = length == 0 ? 0 : context.Allocator.Allocate((long)length * dtype.SizeOf()).Address;
        return new CudaStorage(context, dtype, length, a);
    }

    /// <inheritdoc />
    public override Device Device => Device.Cuda(_context.Index);

    /// <summary>The device context owning the memory.</summary>
    public CudaContext Context => _context;

    /// <summary>Address of element 0.</summary>
    public CuDevicePtr Ptr => _address != 0 || Length == 0 ? new CuDevicePtr(_address) : throw new ObjectDisposedException(nameof(CudaStorage));

    /// <summary>Address of element <paramref name="offset"/>.</summary>
    public CuDevicePtr At(int offset) => Ptr.Offset((long)offset * DType.SizeOf());

    /// <inheritdoc />
    protected override void Free()
    {
        var a = _address;
        _address = 0;
        if (a != 0) _context.Allocator.Free(a);
    }
}
