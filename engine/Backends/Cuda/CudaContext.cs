using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// Per-device state of the CUDA backend: the primary context, the one compute stream every operation is
/// ordered on, the caching allocator, pinned staging buffers for host copies, our PTX modules (loaded lazily,
/// once per device) and the cuBLAS/cuDNN handles bound to the stream.
/// </summary>
public sealed unsafe class CudaContext
{
    [ThreadStatic] static nint _currentCtx;
    readonly object _gate = new();
    readonly Dictionary<string, CuModule> _modules = new();
    readonly Dictionary<string, CuFunction> _functions = new();
    readonly PinnedStaging _staging;
    CublasHandle? _cublas;
    CudnnHandle? _cudnn;

    /// <summary>Retains device <paramref name="index"/>'s primary context and creates its compute stream.</summary>
    public CudaContext(int index)
    {
        Index = index;
        CudaDriver.Check(CudaDriver.cuDeviceGet(out var dev, index));
        Device = dev;
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out var ctx, dev));
        Context = ctx;
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamCreate(out var s, CuStreamFlags.NonBlocking));
        Stream = s;
        Name = CudaDriver.DeviceName(dev);
        Allocator = new CachingAllocator(new DriverMemory(this), $"cuda:{index}");
        _staging = new PinnedStaging(this);
    }

    /// <summary>Device ordinal.</summary>
    public int Index { get; }
    /// <summary>Driver device handle.</summary>
    public CuDevice Device { get; }
    /// <summary>The retained primary context.</summary>
    public CuContext Context { get; }
    /// <summary>The compute stream: kernels, library calls and copies of this device all go here, in order.</summary>
    public CuStream Stream { get; }
    /// <summary>Marketing name ("NVIDIA H100 80GB HBM3").</summary>
    public string Name { get; }
    /// <summary>The device's caching allocator.</summary>
    public CachingAllocator Allocator { get; }

    /// <summary>Makes the primary context current on the calling thread (cheap when it already is).</summary>
    public void MakeCurrent()
    {
        if (_currentCtx == Context.Handle) return;
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(Context));
        _currentCtx = Context.Handle;
    }

    /// <summary>True while a CUDA graph capture records this context's stream (see <see cref="CudaGraph"/>).</summary>
    public bool Capturing => Allocator.Capturing;

    void RefuseDuringCapture(string what)
    {
        if (Capturing)
            throw new GraphCaptureException($"cuda:{Index}: {what} while a CUDA graph is being captured — a graph holds device work only: " +
                "copy inputs into the graph's static input tensors before Replay, read outputs after it (the dropless MoE's routing reads " +
                "per-expert counts on the host, so keep the MoE outside the graph)");
    }

    /// <summary>Blocks until all work queued on the compute stream has finished.</summary>
    public void Synchronize()
    {
        RefuseDuringCapture("a stream synchronisation");
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(Stream));
    }

    /// <summary>Kernel <paramref name="kernel"/> of PTX module <paramref name="module"/>, loading the module on first use.</summary>
    public CuFunction Function(string module, string kernel)
    {
        var key = module + "/" + kernel;
        lock (_gate)
        {
            if (_functions.TryGetValue(key, out var f)) return f;
            MakeCurrent();
            if (!_modules.TryGetValue(module, out var m))
                _modules[module] = m = CudaDriver.LoadPtx(PtxImages.Get(module), module, out _);
            CudaDriver.Check(CudaDriver.cuModuleGetFunction(out f, m, kernel));
            _functions[key] = f;
            return f;
        }
    }

    /// <summary>Launches <paramref name="kernel"/> on the compute stream with a 1-d grid (asynchronous).</summary>
    public void Launch(string module, string kernel, long grid, int block, KernelArgs args, int sharedBytes = 0)
    {
        if (grid <= 0) return;
        var f = Function(module, kernel);
        MakeCurrent();
        args.Launch(f, (uint)Math.Min(grid, int.MaxValue), (uint)block, (uint)sharedBytes, Stream, kernel);
    }

    /// <summary>Grid size for a grid-stride loop over <paramref name="n"/> elements with <paramref name="block"/> threads.</summary>
    public static long GridFor(long n, int block = 256) => Math.Min((n + block - 1) / block, 65535L * 16);

    /// <summary>Copies host data to device memory: through a pinned staging buffer, asynchronously on the stream.</summary>
    public void CopyToDevice(ReadOnlySpan<byte> src, CuDevicePtr dst)
    {
        RefuseDuringCapture("a host-to-device copy");
        _staging.Upload(src, dst);
    }

    /// <summary>Copies device memory to the host (waits for the stream: this is where the host reads values).</summary>
    public void CopyToHost(CuDevicePtr src, Span<byte> dst)
    {
        RefuseDuringCapture("a device-to-host copy (reading a value)");
        _staging.Download(src, dst);
    }

    /// <summary>cuBLAS handle bound to the compute stream (created on first use).</summary>
    public CublasHandle Cublas
    {
        get
        {
            lock (_gate)
            {
                if (_cublas is { } h) return h;
                MakeCurrent();
                CuBlas.Check(CuBlas.cublasCreate_v2(out var nh));
                CuBlas.Check(CuBlas.cublasSetStream_v2(nh, Stream));
                // A workspace of our own (held for the context's life): cuBLAS then never allocates by itself, so its
                // calls can be captured into a CUDA graph. 32 MiB covers Hopper's largest recommended workspace.
                var ws = Allocator.Allocate(CublasWorkspaceBytes).Address;
                CuBlas.Check(CuBlas.cublasSetWorkspace_v2(nh, new CuDevicePtr(ws), (nuint)CublasWorkspaceBytes));
                _cublas = nh;
                return nh;
            }
        }
    }

    /// <summary>cuDNN handle bound to the compute stream (created on first use).</summary>
    public CudnnHandle Cudnn
    {
        get
        {
            lock (_gate)
            {
                if (_cudnn is { } h) return h;
                MakeCurrent();
                CuDnn.Check(CuDnn.cudnnCreate(out var nh));
                CuDnn.Check(CuDnn.cudnnSetStream(nh, Stream));
                _cudnn = nh;
                return nh;
            }
        }
    }

    const long CublasWorkspaceBytes = 32L << 20;
    ulong _moeCounters;
    int _moeCounterCount;

    /// <summary>
    /// At least <paramref name="count"/> unsigned counters for the fused gating kernels' block election, zero. They are
    /// allocated (and zeroed) once per context and grown when a larger batch needs more; the kernels leave them zero
    /// after every launch (kernels/moe_gating.cu), so no memset is queued per call and the address stays fixed (a CUDA
    /// graph may capture it).
    /// </summary>
    internal CuDevicePtr MoeCounters(int count)
    {
        lock (_gate)
        {
            if (count <= _moeCounterCount) return new CuDevicePtr(_moeCounters);
            int n = Math.Max(count, 64);
            var block = Allocator.Allocate(4L * n).Address;
            MakeCurrent();
            CudaDriver.Check(CudaDriver.cuMemsetD32Async(new CuDevicePtr(block), 0, (nuint)n, Stream));
            if (_moeCounters != 0) Allocator.Free(_moeCounters);
            _moeCounters = block; _moeCounterCount = n;
            return new CuDevicePtr(block);
        }
    }

    /// <summary>Peak DRAM bandwidth in bytes/s: 2 (DDR) × memory clock × bus width / 8.</summary>
    public double PeakBandwidthBytesPerSecond()
    {
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out var khz, CuDeviceAttribute.MemoryClockRate, Device));
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out var bits, CuDeviceAttribute.GlobalMemoryBusWidth, Device));
        return 2.0 * khz * 1000.0 * bits / 8.0;
    }
}
