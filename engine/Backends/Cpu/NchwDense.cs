namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>Dense row-major access to a storage through its layout: the array itself when contiguous, a gathered copy otherwise.</summary>
internal static class NchwDense
{
    /// <summary>The backing array and the offset of element 0 (a fresh dense copy at offset 0 when the layout is strided).</summary>
    public static (T[] Data, int Offset) Of<T>(CpuBackendOptions options, Storage s, Layout l) where T : unmanaged
    {
        var a = CpuBackend.Arr<T>(s);
        if (l.IsContiguous) return (a, l.Offset);
        var dense = GC.AllocateUninitializedArray<T>(l.Count);
        CpuBackend.Gather(options, a, l, dense);
        return (dense, 0);
    }

    /// <summary>Storage index of element i of a 1-d layout.</summary>
    public static int At(Layout l, int i) => l.Offset + i * l.Strides[0];
}
