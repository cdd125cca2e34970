namespace MtlMoe.Engine.Backends;

/// <summary>
/// The seam between tensors and compute: a small table of primitives every backend implements.
/// Each primitive is told the layout (shape, strides, offset) of its inputs and returns a new,
/// contiguous storage unless it says otherwise. Autograd lives above this seam, so a backend that
/// implements these gets every gradient for free. This part holds allocation, copies, casts and fills; the op
/// families (elementwise, reduce, matmul, conv, pool, norm, fused, softmax, index, optim, moe) are declared in the
/// other parts of this partial interface, one file per family, named like the backends' files (CpuBackend.Pool.cs, CudaBackend.Pool.cs).
/// </summary>
public partial interface IBackend
{
    /// <summary>The device this backend computes on.</summary>
    Device Device { get; }

    /// <summary>A zero-filled storage of <paramref name="length"/> elements.</summary>
    Storage Allocate(DType dtype, int length);

    /// <summary>A storage holding a copy of host data.</summary>
    Storage Upload<T>(ReadOnlySpan<T> data) where T : unmanaged;

    /// <summary>Copies the elements a layout selects, row-major, into a host buffer of the same element type.</summary>
    void Download<T>(StorageView src, Span<T> dst) where T : unmanaged;

    /// <summary>Dense row-major copy of the elements a layout selects.</summary>
    Storage Contiguous(StorageView src);

    /// <summary>Writes src's elements into the positions dst's layout selects (same shape, same dtype).</summary>
    void CopyInto(StorageView src, StorageView dst);

    /// <summary>Converts elements to another dtype (float→int truncates toward zero).</summary>
    Storage Cast(StorageView src, DType to);

    /// <summary>Sets every element a layout selects to <paramref name="value"/>.</summary>
    void Fill(StorageView dst, double value);
}
