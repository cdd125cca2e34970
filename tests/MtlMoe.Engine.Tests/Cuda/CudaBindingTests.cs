using System.Runtime.InteropServices;
using MtlMoe.Engine.Backends.Cuda;
using MtlMoe.Engine.Backends.Cuda.Native;
using static MtlMoe.Engine.Backends.Cuda.Native.CudaDriver;

namespace MtlMoe.Tests.Cuda;

/// <summary>Binding-level checks on a real GPU; each test is ignored with the reason where CUDA is unavailable.</summary>
[Category("Cuda")]
[NonParallelizable] // one GPU context and stream, and the caching allocator's counters, shared by every CUDA test
public unsafe class CudaBindingTests
{
    CuDevice _dev;
    CuContext _ctx;
    CuStream _stream;

    [SetUp]
    public void Open()
    {
        CudaTestEnv.RequireCuda();
        Check(cuDeviceGet(out _dev, 0));
        Check(cuDevicePrimaryCtxRetain(out _ctx, _dev));
        Check(cuCtxSetCurrent(_ctx));
        Check(cuStreamCreate(out _stream, CuStreamFlags.NonBlocking));
    }

    [TearDown]
    public void Close()
    {
        if (_ctx.IsNull) return;
        Check(cuStreamDestroy_v2(_stream));
        Check(cuDevicePrimaryCtxRelease_v2(_dev));
        _ctx = default;
    }

    [Test]
    public void DeviceQueryReportsSaneValues()
    {
        var name = DeviceName(_dev);
        Check(cuDeviceGetAttribute(out var major, CuDeviceAttribute.ComputeCapabilityMajor, _dev));
        Check(cuDeviceGetAttribute(out var sms, CuDeviceAttribute.MultiprocessorCount, _dev));
        Check(cuDeviceGetAttribute(out var warp, CuDeviceAttribute.WarpSize, _dev));
        Check(cuDeviceTotalMem_v2(out var total, _dev));
        Check(cuMemGetInfo_v2(out var free, out var total2));
        TestContext.Out.WriteLine($"{name}: sm_{major}x, {sms} SMs, {total / (1 << 20)} MiB ({free / (1 << 20)} MiB free)");
        Assert.That(name, Is.Not.Empty);
        Assert.That(major, Is.GreaterThanOrEqualTo(5));
        Assert.That(sms, Is.GreaterThan(0));
        Assert.That(warp, Is.EqualTo(32));
        Assert.That(total2, Is.EqualTo(total));
        Assert.That(free, Is.LessThanOrEqualTo(total));
    }

    [Test]
    public void AllocCopyRoundTripThroughPinnedMemory()
    {
        const int n = 1 << 16;
        var bytes = (nuint)(n * sizeof(float));
        Check(cuMemHostAlloc(out var pinned, bytes, CuMemHostAllocFlags.Portable));
        Check(cuMemAlloc_v2(out var a, bytes));
        Check(cuMemAllocAsync(out var b, bytes, _stream));
        try
        {
            var host = new Span<float>((void*)pinned, n);
            for (var i = 0; i < n; i++) host[i] = i * 0.5f;
            Check(cuMemcpyHtoDAsync_v2(a, (void*)pinned, bytes, _stream));
            Check(cuMemcpyDtoDAsync_v2(b, a, bytes, _stream));
            host.Clear();
            Check(cuMemcpyDtoHAsync_v2((void*)pinned, b, bytes, _stream));
            Check(cuStreamSynchronize(_stream));
            for (var i = 0; i < n; i++) Assert.That(host[i], Is.EqualTo(i * 0.5f), $"element {i}");

            Check(cuMemsetD32Async(b, BitConverter.SingleToUInt32Bits(3f), (nuint)n, _stream));
            Check(cuMemcpyDtoHAsync_v2((void*)pinned, b, bytes, _stream));
            Check(cuStreamSynchronize(_stream));
            Assert.That(host.ToArray().All(v => v == 3f));
        }
        finally
        {
            Check(cuMemFreeAsync(b, _stream));
            Check(cuStreamSynchronize(_stream));
            Check(cuMemFree_v2(a));
            Check(cuMemFreeHost(pinned));
        }
    }

    [Test]
    public void EveryEmbeddedModuleLoadsAndExposesItsEntryPoints()
    {
        Assert.That(PtxImages.Modules, Is.Not.Empty);
        foreach (var m in PtxImages.Modules)
        {
            var ptx = PtxImages.Get(m);
            var module = LoadPtx(ptx, m, out var log);
            try
            {
                foreach (var entry in PtxImages.EntryPoints(ptx))
                {
                    Check(cuModuleGetFunction(out var f, module, entry));
                    Check(cuOccupancyMaxPotentialBlockSize(out _, out var block, f, 0, 0, 0));
                    Assert.That(block, Is.GreaterThan(0), $"{m}.{entry}");
                }
            }
            finally { Check(cuModuleUnload(module)); }
        }
    }

    [Test]
    public void BadPtxSurfacesTheJitLog()
    {
        var ex = Assert.Throws<CudaException>(() => LoadPtx(".version 7.0\n.target sm_80\n.address_size 64\n.visible .entry broken() { bogus; }\n", "broken", out _));
        Assert.That(ex!.Message, Does.Contain("cuModuleLoadDataEx").And.Contain("broken"));
    }

    [Test]
    public void AddKernelsMatchTheCpu()
    {
        // The backend's pointwise binary_f32 (kernels/pointwise.cu) launched by hand: its Strided3 layout argument goes by
        // value as a 264-byte struct (int ndim; int pad; i64 shape[8]; i64 st[3][8]), then the op (BinaryOp ordinal).
        const int n = 10_000;
        var a = Enumerable.Range(0, n).Select(i => (float)Math.Sin(i)).ToArray();
        var b = Enumerable.Range(0, n).Select(i => (float)Math.Cos(i)).ToArray();
        using var g = new GpuScratch(_stream);
        var da = g.Upload(a); var db = g.Upload(b); var dy = g.Alloc(n * 4);
        var module = LoadPtx(PtxImages.Get("pointwise"), "pointwise", out _);
        try
        {
            Check(cuModuleGetFunction(out var binary, module, "binary_f32"));
            // Dense: one dim of n, both operands stride 1.
            LaunchBinaryAdd(binary, n, [n], [1], [1], da, db, dy);
            var y = g.Download<float>(dy, n);
            for (var i = 0; i < n; i++) Assert.That(y[i], Is.EqualTo(a[i] + b[i]), $"add[{i}]");

            // Broadcast a [3, 1] column against a [1, 4] row: strides (1, 0) and (0, 1) over the shape [3, 4].
            var col = g.Upload(new[] { 1f, 2f, 3f });
            var row = g.Upload(new[] { 10f, 20f, 30f, 40f });
            var outp = g.Alloc(12 * 4);
            LaunchBinaryAdd(binary, 12, [3, 4], [1, 0], [0, 1], col, row, outp);
            var z = g.Download<float>(outp, 12);
            Assert.That(z, Is.EqualTo(new[] { 11f, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43 }));
        }
        finally { Check(cuModuleUnload(module)); }
    }

    // binary_f32(i64 n, Strided3 s, int op, const float* a, const float* b, float* y) with op = BinaryOp.Add.
    void LaunchBinaryAdd(CuFunction f, long count, long[] shape, long[] stA, long[] stB, CuDevicePtr a, CuDevicePtr b, CuDevicePtr y)
    {
        const int dims = 8;
        var layout = new byte[8 + 8 * dims + 3 * 8 * dims];
        fixed (byte* pl = layout)
        {
            *(int*)pl = shape.Length; // ndim, then 4 bytes of padding
            var longs = (long*)(pl + 8);
            for (int d = 0; d < shape.Length; d++)
            {
                longs[d] = shape[d];
                longs[dims + d] = stA[d];
                longs[2 * dims + d] = stB[d];
            }
            int op = (int)MtlMoe.Engine.Backends.BinaryOp.Add;
            var p = stackalloc void*[] { &count, pl, &op, &a, &b, &y };
            Check(cuLaunchKernel(f, (uint)((count + 255) / 256), 1, 1, 256, 1, 1, 0, _stream, p, null));
            Check(cuStreamSynchronize(_stream));
        }
    }

    [Test]
    public void RowKernelsMatchTheCpu()
    {
        const int rows = 7, cols = 1000;
        var rng = new Random(3);
        var x = Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        using var g = new GpuScratch(_stream);
        var dx = g.Upload(x); var dsum = g.Alloc(rows * 4); var dsm = g.Alloc(rows * cols * 4);
        var reduce = LoadPtx(PtxImages.Get("reduce"), "reduce", out _);
        var softmax = LoadPtx(PtxImages.Get("softmax"), "softmax", out _);
        try
        {
            Check(cuModuleGetFunction(out var sum, reduce, "sum_rows_f32"));
            Check(cuModuleGetFunction(out var sm, softmax, "softmax_f32"));
            Launch(sum, rows, 256, (long)rows, (long)cols, dx, dsum);
            Launch(sm, rows, 256, (long)rows, (long)cols, dx, dsm);
            var s = g.Download<float>(dsum, rows);
            var p = g.Download<float>(dsm, rows * cols);
            for (var r = 0; r < rows; r++)
            {
                var seg = x.AsSpan(r * cols, cols).ToArray();
                Assert.That(s[r], Is.EqualTo(seg.Sum(v => (double)v)).Within(1e-3), $"sum row {r}");
                var mx = seg.Max();
                var z = seg.Sum(v => Math.Exp(v - mx));
                for (var c = 0; c < cols; c++)
                    Assert.That(p[r * cols + c], Is.EqualTo(Math.Exp(seg[c] - mx) / z).Within(1e-6 + 1e-4 * Math.Exp(seg[c] - mx) / z));
            }
        }
        finally { Check(cuModuleUnload(reduce)); Check(cuModuleUnload(softmax)); }
    }

    [Test]
    public void SgemmMatchesTheCpu()
    {
        if (!CudaLibraryResolver.TryLoad(CuBlas.Library, out _, out var why)) Assert.Ignore($"cuBLAS not available: {why}");
        const int m = 33, n = 17, k = 29;
        var rng = new Random(5);
        var a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();  // row-major [m, k]
        var b = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();  // row-major [k, n]
        using var g = new GpuScratch(_stream);
        var da = g.Upload(a); var db = g.Upload(b); var dc = g.Alloc(m * n * 4);
        CuBlas.Check(CuBlas.cublasCreate_v2(out var h));
        try
        {
            CuBlas.Check(CuBlas.cublasSetStream_v2(h, _stream));
            CuBlas.Check(CuBlas.cublasSetMathMode(h, CublasMath.Pedantic));
            float alpha = 1, beta = 0;
            // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: swap operands, keep no-transpose.
            CuBlas.Check(CuBlas.cublasSgemm_v2(h, CublasOperation.N, CublasOperation.N, n, m, k, &alpha, db, n, da, k, &beta, dc, n));
            var c = g.Download<float>(dc, m * n);
            for (var i = 0; i < m; i++)
                for (var j = 0; j < n; j++)
                {
                    double s = 0;
                    for (var t = 0; t < k; t++) s += (double)a[i * k + t] * b[t * n + j];
                    Assert.That(c[i * n + j], Is.EqualTo(s).Within(1e-4), $"C[{i},{j}]");
                }

            // Same product through GemmEx with fp32 compute; strided-batched with batch 1 must agree too.
            var dc2 = g.Alloc(m * n * 4);
            CuBlas.Check(CuBlas.cublasGemmEx(h, CublasOperation.N, CublasOperation.N, n, m, k, &alpha, db, CudaDataType.R32F, n,
                da, CudaDataType.R32F, k, &beta, dc2, CudaDataType.R32F, n, CublasComputeType.Compute32F, CublasGemmAlgo.Default));
            Assert.That(g.Download<float>(dc2, m * n), Is.EqualTo(c).Within(1e-5));
            CuBlas.Check(CuBlas.cublasSgemmStridedBatched(h, CublasOperation.N, CublasOperation.N, n, m, k, &alpha, db, n, 0, da, k, 0,
                &beta, dc2, n, 0, 1));
            Assert.That(g.Download<float>(dc2, m * n), Is.EqualTo(c).Within(1e-5));
        }
        finally { CuBlas.Check(CuBlas.cublasDestroy_v2(h)); }
    }

    [Test]
    public void CudnnCreatesHandleAndDescriptors()
    {
        if (!CudaLibraryResolver.TryLoad(CuDnn.Library, out _, out var why)) Assert.Ignore($"cuDNN not available: {why}");
        var version = CuDnn.cudnnGetVersion();
        TestContext.Out.WriteLine($"cuDNN {version}");
        Assert.That(version, Is.GreaterThanOrEqualTo((nuint)8000));
        CuDnn.Check(CuDnn.cudnnCreate(out var h));
        try
        {
            CuDnn.Check(CuDnn.cudnnSetStream(h, _stream));
            using var x = new TensorDescriptor(CudnnDataType.Float, 2, 3, 8, 8);
            using var w = new FilterDescriptor(CudnnDataType.Float, 4, 3, 3, 3);
            using var conv = new ConvolutionDescriptor(1, 1, 1, 1);
            CuDnn.Check(CuDnn.cudnnGetConvolution2dForwardOutputDim(conv.Handle, x.Handle, w.Handle, out var n, out var c, out var hh, out var ww));
            Assert.That(new[] { n, c, hh, ww }, Is.EqualTo(new[] { 2, 4, 8, 8 }));
            using var y = new TensorDescriptor(CudnnDataType.Float, n, c, hh, ww);
            var perf = stackalloc CudnnConvFwdAlgoPerf[8];
            CuDnn.Check(CuDnn.cudnnGetConvolutionForwardAlgorithm_v7(h, x.Handle, w.Handle, conv.Handle, y.Handle, 8, out var got, perf));
            Assert.That(got, Is.GreaterThan(0));
            CuDnn.Check(CuDnn.cudnnGetConvolutionForwardWorkspaceSize(h, x.Handle, w.Handle, conv.Handle, y.Handle, perf[0].Algo, out _));
            using var pool = new PoolingDescriptor(CudnnPoolingMode.Max, 2, 2, 0, 0, 2, 2);
            using var act = new ActivationDescriptor(CudnnActivationMode.Relu);
        }
        finally { CuDnn.Check(CuDnn.cudnnDestroy(h)); }
    }

    [Test]
    public void EventsTimeAStream()
    {
        Check(cuEventCreate(out var start, CuEventFlags.Default));
        Check(cuEventCreate(out var stop, CuEventFlags.Default));
        try
        {
            Check(cuEventRecord(start, _stream));
            Check(cuEventRecord(stop, _stream));
            Check(cuEventSynchronize(stop));
            Check(cuEventElapsedTime(out var ms, start, stop));
            Assert.That(ms, Is.GreaterThanOrEqualTo(0f));
        }
        finally { Check(cuEventDestroy_v2(start)); Check(cuEventDestroy_v2(stop)); }
    }

    /// <summary>Launches with each argument boxed into unmanaged memory (long, int, float, CuDevicePtr).</summary>
    void Launch(CuFunction f, int grid, int block, params object[] args)
    {
        var slots = new nint[args.Length];
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                slots[i] = (nint)NativeMemory.Alloc(8);
                switch (args[i])
                {
                    case long v: *(long*)slots[i] = v; break;
                    case int v: *(int*)slots[i] = v; break;
                    case float v: *(float*)slots[i] = v; break;
                    case CuDevicePtr v: *(ulong*)slots[i] = v.Address; break;
                    default: throw new ArgumentException($"unsupported kernel argument {args[i].GetType()}");
                }
            }
            fixed (nint* p = slots) Check(cuLaunchKernel(f, (uint)grid, 1, 1, (uint)block, 1, 1, 0, _stream, (void**)p, null));
            Check(cuStreamSynchronize(_stream));
        }
        finally { foreach (var s in slots) if (s != 0) NativeMemory.Free((void*)s); }
    }

    /// <summary>Device buffers freed together at the end of a test.</summary>
    sealed class GpuScratch(CuStream stream) : IDisposable
    {
        readonly List<CuDevicePtr> _owned = [];

        public CuDevicePtr Alloc(int bytes)
        {
            Check(cuMemAlloc_v2(out var p, (nuint)bytes));
            _owned.Add(p);
            return p;
        }

        public CuDevicePtr Upload<T>(T[] data) where T : unmanaged
        {
            var p = Alloc(data.Length * sizeof(T));
            fixed (T* src = data) Check(cuMemcpyHtoDAsync_v2(p, src, (nuint)(data.Length * sizeof(T)), stream));
            Check(cuStreamSynchronize(stream));
            return p;
        }

        public T[] Download<T>(CuDevicePtr p, int count) where T : unmanaged
        {
            var data = new T[count];
            fixed (T* dst = data) Check(cuMemcpyDtoHAsync_v2(dst, p, (nuint)(count * sizeof(T)), stream));
            Check(cuStreamSynchronize(stream));
            return data;
        }

        public void Dispose()
        {
            foreach (var p in _owned) Check(cuMemFree_v2(p));
        }
    }
}
