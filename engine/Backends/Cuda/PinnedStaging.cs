using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// A ring of pinned host buffers for host↔device copies. An upload copies into the next buffer and queues an
/// async copy on the stream, recording an event; the buffer is reused only after its event (usually long
/// done), so uploads never wait for the device. A download queues the copy and waits for the stream.
/// </summary>
sealed unsafe class PinnedStaging(CudaContext context)
{
    const int Slots = 4;
    const long MinBytes = 1 << 20;
    readonly object _gate = new();
    readonly nint[] _ptr = new nint[Slots];
    readonly long[] _size = new long[Slots];
    readonly CuEvent?[] _done = new CuEvent?[Slots];
    int _next;

    public void Upload(ReadOnlySpan<byte> src, CuDevicePtr dst)
    {
        if (src.Length == 0) return;
        lock (_gate)
        {
            context.MakeCurrent();
            int i = _next;
            _next = (_next + 1) % Slots;
            if (_done[i] is { } ev) CudaDriver.Check(CudaDriver.cuEventSynchronize(ev));
            var p = Ensure(i, src.Length);
            src.CopyTo(new Span<byte>((void*)p, src.Length));
            CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync_v2(dst, (void*)p, (nuint)src.Length, context.Stream));
            if (_done[i] is not { } e)
            {
                CudaDriver.Check(CudaDriver.cuEventCreate(out var ne, CuEventFlags.DisableTiming));
                _done[i] = e = ne;
            }
            CudaDriver.Check(CudaDriver.cuEventRecord(e, context.Stream));
        }
    }

    public void Download(CuDevicePtr src, Span<byte> dst)
    {
        if (dst.Length == 0) return;
        lock (_gate)
        {
            context.MakeCurrent();
            int i = _next;
            _next = (_next + 1) % Slots;
            if (_done[i] is { } ev) CudaDriver.Check(CudaDriver.cuEventSynchronize(ev));
            var p = Ensure(i, dst.Length);
            CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync_v2((void*)p, src, (nuint)dst.Length, context.Stream));
            CudaDriver.Check(CudaDriver.cuStreamSynchronize(context.Stream));
            new ReadOnlySpan<byte>((void*)p, dst.Length).CopyTo(dst);
        }
    }

    nint Ensure(int i, long bytes)
    {
        if (_size[i] >= bytes) return _ptr[i];
        if (_ptr[i] != 0) CudaDriver.Check(CudaDriver.cuMemFreeHost(_ptr[i]));
        long size = Math.Max(MinBytes, CachingAllocator.BucketSize(bytes));
        CudaDriver.Check(CudaDriver.cuMemHostAlloc(out var p, (nuint)size, CuMemHostAllocFlags.Portable));
        _ptr[i] = p;
        _size[i] = size;
        return p;
    }
}
