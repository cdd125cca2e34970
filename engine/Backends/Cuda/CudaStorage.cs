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

    /// <summary>
    /// Non-null while the memory holds a logical dense [N, C, H, W] tensor in channels-last order ([N, H·W, C]): only the
    /// backend's channels-last paths read it so; every other use converts it back in place first
    /// (<see cref="CudaBackend"/>'s <c>Cu</c>/<c>P</c>/<c>Dense</c>), so code that assumes NCHW never sees NHWC bytes.
    /// </summary>
    internal NhwcDims? Nhwc { get; set; }

    /// <summary>Swaps the memory block for <paramref name="address"/> (same size, filled by the caller) and frees the old one.</summary>
    internal void ReplaceBlock(ulong address)
    {
        var old = _address;
        _address = address;
        if (old != 0) _context.Allocator.Free(old);
    }

    /// <inheritdoc />
    protected override void Free()
    {
        var a = _address;
        _address = 0;
        if (a != 0) _context.Allocator.Free(a);
    }
}

/// <summary>The logical dims of a channels-last storage: N images, C channels, HW = H·W positions.</summary>
internal readonly record struct NhwcDims(int N, int C, long HW);
