using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary><see cref="IDeviceMemory"/> over cuMemAlloc/cuMemFree in the device's primary context.</summary>
sealed class DriverMemory(CudaContext context) : IDeviceMemory
{
    public bool TryAlloc(long bytes, out ulong address)
    {
        context.MakeCurrent();
        var r = CudaDriver.cuMemAlloc_v2(out var p, (nuint)bytes);
        address = p.Address;
        if (r == CuResult.OutOfMemory) return false;
        CudaDriver.Check(r, "cuMemAlloc_v2");
        return true;
    }

    public void Free(ulong address)
    {
        context.MakeCurrent();
        // Blocks are only given back when the cache is emptied; pending work on the stream may still use them.
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(context.Stream));
        CudaDriver.Check(CudaDriver.cuMemFree_v2(new CuDevicePtr(address)));
    }
}
