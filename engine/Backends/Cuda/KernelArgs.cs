using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// A kernel's argument list for cuLaunchKernel, built in declaration order with the C types of the kernel's
/// signature: <c>Add(long)</c> for i64, <c>Add(int)</c> for int, <c>Add(float)</c>, <c>Add(double)</c>,
/// <c>Add(CuDevicePtr)</c> for any pointer, <c>AddStruct</c> for a struct passed by value.
/// The driver copies the values at launch, so the list can be dropped right after.
/// </summary>
public sealed class KernelArgs
{
    byte[] _buf = new byte[256];
    readonly List<int> _offsets = new(16);
    int _used;

    /// <summary>Number of arguments added.</summary>
    public int Count => _offsets.Count;

    /// <summary>Appends a value of any blittable type (8-byte aligned slot).</summary>
    public KernelArgs AddStruct<T>(T value) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        int at = (_used + 7) & ~7;
        if (at + size > _buf.Length) Array.Resize(ref _buf, Math.Max(_buf.Length * 2, at + size));
        MemoryMarshal.Write(_buf.AsSpan(at), in value);
        _offsets.Add(at);
        _used = at + size;
        return this;
    }

    /// <summary>An i64 argument.</summary>
    public KernelArgs Add(long v) => AddStruct(v);
    /// <summary>An int argument.</summary>
    public KernelArgs Add(int v) => AddStruct(v);
    /// <summary>A float argument.</summary>
    public KernelArgs Add(float v) => AddStruct(v);
    /// <summary>A double argument.</summary>
    public KernelArgs Add(double v) => AddStruct(v);
    /// <summary>A device pointer argument (null allowed).</summary>
    public KernelArgs Add(CuDevicePtr p) => AddStruct(p.Address);

    internal unsafe void Launch(CuFunction f, uint grid, uint block, uint sharedBytes, CuStream stream, string name)
    {
        fixed (byte* b = _buf)
        {
            var ptrs = stackalloc void*[Math.Max(1, _offsets.Count)];
            for (int i = 0; i < _offsets.Count; i++) ptrs[i] = b + _offsets[i];
            var r = CudaDriver.cuLaunchKernel(f, grid, 1, 1, block, 1, 1, sharedBytes, stream, ptrs, null);
            if (r != CuResult.Success) throw CudaDriver.Error(r, "cuLaunchKernel", name);
        }
    }
}
