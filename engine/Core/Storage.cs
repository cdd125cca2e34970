namespace MtlMoe.Engine;

/// <summary>
/// A backend's buffer of elements, shared by a tensor and its views through a reference count.
/// When the last tensor releases it, the backend takes the memory back (pooled on the CPU).
/// </summary>
public abstract class Storage
{
    private int _refCount = 1;

    /// <summary>Element type.</summary>
    public DType DType { get; }
    /// <summary>Number of elements.</summary>
    public int Length { get; }
    /// <summary>Device holding the memory.</summary>
    public abstract Device Device { get; }

    /// <summary>Creates a storage holding one reference and counts its bytes as live.</summary>
    protected Storage(DType dtype, int length)
    {
        DType = dtype; Length = length;
        MemoryStats.OnStorageCreated((long)length * dtype.SizeOf());
    }

    /// <summary>Size in bytes.</summary>
    public long Bytes => (long)Length * DType.SizeOf();

    internal void AddRef() => Interlocked.Increment(ref _refCount);

    /// <summary>References held now (1: a single tensor owns the memory and no view shares it).</summary>
    internal int RefCount => Volatile.Read(ref _refCount);

    internal void Release()
    {
        int n = Interlocked.Decrement(ref _refCount);
        if (n == 0)
        {
            MemoryStats.OnStorageFreed(Bytes);
            Free();
        }
        else if (n < 0) throw new InvalidOperationException("storage released more often than referenced");
    }

    /// <summary>Gives the memory back to the backend; called once, when the last reference goes.</summary>
    protected abstract void Free();
}
