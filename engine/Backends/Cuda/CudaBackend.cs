using System.Runtime.InteropServices;
using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// The CUDA backend: device memory from a caching allocator, every operation queued in order on the device's one
/// compute stream (nothing synchronises until the host reads values through <see cref="Download{T}"/>), our PTX
/// kernels (kernels/*.cu) for pointwise/reduction/index/norm/optimizer/MoE primitives, cuBLAS for MatMul and cuDNN
/// for convolutions. Kernels are float32 for the math-heavy families, bf16 wherever they touch activations (float32
/// compute, one rounding on store: the same results as the CPU backend's bf16 twins up to float32 summation order);
/// float64 works where a double kernel exists; anything else throws <see cref="NotSupportedException"/> naming the op.
/// Split in one file per op family.
/// </summary>
public sealed partial class CudaBackend : IBackend
{
    /// <summary>The backend of device <paramref name="index"/> over a new context, with <paramref name="options"/> (null: the defaults).</summary>
    public CudaBackend(int index, CudaBackendOptions? options = null) : this(new CudaContext(index), options) { }

    /// <summary>A backend on an existing device context (its stream, allocator and handles), with its own options.</summary>
    public CudaBackend(CudaContext context, CudaBackendOptions? options = null)
    {
        Context = context;
        Device = Device.Cuda(context.Index);
        Options = options ?? new CudaBackendOptions();
    }

    /// <summary>The device's context (stream, allocator, handles).</summary>
    public CudaContext Context { get; }

    /// <summary>This backend's settings (TF32).</summary>
    public CudaBackendOptions Options { get; }

    bool AllowTf32 => Options.AllowTf32;

    /// <inheritdoc />
    public Device Device { get; }

    /// <summary>
    /// A backend on the same device context (storages pass freely between the two) with other options, e.g.
    /// <c>BackendRegistry.Use(cuda.With(new() { AllowTf32 = true }))</c>.
    /// </summary>
    public CudaBackend With(CudaBackendOptions options) => new(Context, options);

    /// <summary>
    /// The backend for CUDA device <paramref name="index"/> with default options (<see cref="BackendRegistry"/> builds it
    /// once per device). Where the driver or the device is missing: one <see cref="DeviceUnavailableException"/>.
    /// </summary>
    public static CudaBackend Create(int index)
    {
        if (!CudaRuntime.IsAvailable(out var reason))
            throw new DeviceUnavailableException($"device cuda:{index} was requested but CUDA is unavailable: {reason}; use --device cpu");
        if (index < 0 || index >= CudaRuntime.DeviceCount)
            throw new DeviceUnavailableException($"device cuda:{index} was requested but this machine has {CudaRuntime.DeviceCount} CUDA device(s)");
        return new CudaBackend(index);
    }

    // ---------- helpers ----------

    internal CudaStorage New(DType dtype, int length) => CudaStorage.Create(Context, dtype, length);

    internal CudaStorage NewZeroed(DType dtype, int length)
    {
        var s = New(dtype, length);
        if (length > 0)
        {
            Context.MakeCurrent();
            CudaDriver.Check(CudaDriver.cuMemsetD32Async(s.Ptr, 0, (nuint)((long)length * dtype.SizeOf() / 4), Context.Stream));
        }
        return s;
    }

    /// <summary>
    /// The device storage behind <paramref name="s"/>, as dense NCHW memory: a channels-last storage is converted back in
    /// place first (see CudaBackend.ChannelsLast.cs), so every caller of Cu/P/Dense may assume NCHW.
    /// </summary>
    internal CudaStorage Cu(Storage s, string op)
    {
        if (s is not CudaStorage c || c.Context != Context)
            throw new InvalidOperationException($"{op}: a {s.Device} storage was handed to the {Device} backend");
        if (c.Nhwc is not null) EnsureNchw(c);
        return c;
    }

    /// <summary>Device address of a layout's element 0.</summary>
    internal CuDevicePtr P(Storage s, Layout l, string op) => Cu(s, op).At(l.Offset);

    /// <summary>Device address of a storage's element 0 (dense buffers this backend made).</summary>
    internal CuDevicePtr P(Storage s, string op = "cuda") => Cu(s, op).Ptr;

    internal static string Sfx(DType t) => t switch
    {
        DType.Float32 => "f32",
        DType.Float64 => "f64",
        DType.Int32 => "i32",
        DType.Int64 => "i64",
        DType.BFloat16 => "bf16",
        _ => throw new NotSupportedException($"cuda: dtype {t.Name()} has no kernels"),
    };

    /// <summary>Refuses a dtype outside <paramref name="allowed"/>, naming the op and what it takes.</summary>
    internal static void RequireDType(string op, DType t, params DType[] allowed)
    {
        if (Array.IndexOf(allowed, t) < 0)
            throw new NotSupportedException($"{op} on cuda supports {string.Join(", ", allowed.Select(a => a.Name()))} (got {t.Name()})");
    }

    internal static void RequireF32(string op, DType t)
    {
        if (t != DType.Float32)
            throw new NotSupportedException($"{op} on cuda supports float32 only (got {t.Name()}): its kernels are f32; move the tensors to the cpu for {t.Name()}");
    }

    internal static void RequireFloat(string op, DType t)
    {
        if (t is not (DType.Float32 or DType.Float64))
            throw new NotSupportedException($"{op} on cuda supports float32 and float64 (got {t.Name()})");
    }

    internal void Launch(string module, string kernel, long threads, KernelArgs args, int block = 256, int sharedBytes = 0)
        => Context.Launch(module, kernel, CudaContext.GridFor(threads, block), block, args, sharedBytes);

    /// <summary>A dense storage of the elements a layout selects (the storage itself, with a reference added, when already dense at offset 0).</summary>
    internal CudaStorage Dense(Storage s, Layout l, string op)
    {
        var c = Cu(s, op);
        if (l.IsContiguous && l.Offset == 0 && c.Length == l.Count) { c.AddRef(); return c; }
        return (CudaStorage)Contiguous(new(s, l));
    }

    // ---------- memory ----------

    /// <inheritdoc />
    public Storage Allocate(DType dtype, int length) => NewZeroed(dtype, length);

    /// <inheritdoc />
    public Storage Upload<T>(ReadOnlySpan<T> data) where T : unmanaged
    {
        var s = New(DTypeInfo.Of<T>(), data.Length);
        Context.CopyToDevice(MemoryMarshal.AsBytes(data), s.Ptr);
        return s;
    }

    /// <inheritdoc />
    public void Download<T>(StorageView srcView, Span<T> dst) where T : unmanaged
    {
        var (src, layout) = srcView;
        if (layout.Count == 0) return;
        var bytes = MemoryMarshal.AsBytes(dst[..layout.Count]);
        if (layout.IsContiguous) { Context.CopyToHost(P(src, layout, "download"), bytes); return; }
        var d = Contiguous(srcView);
        try { Context.CopyToHost(P(d), bytes); }
        finally { d.Release(); }
    }

    /// <inheritdoc />
    public Storage Contiguous(StorageView srcView)
    {
        var (src, layout) = srcView;
        var y = New(src.DType, layout.Count);
        CopyStrided(src, layout, y, Layout.Contiguous(layout.Shape), "contiguous");
        return y;
    }

    /// <inheritdoc />
    public void CopyInto(StorageView srcView, StorageView dstView)
    {
        var (src, srcLayout) = srcView;
        var (dst, dstLayout) = dstView;
        if (src.DType != dst.DType) throw new InvalidOperationException($"copy_into: dtype {src.DType.Name()} into {dst.DType.Name()}");
        if (!Shapes.Equal(srcLayout.Shape, dstLayout.Shape)) throw new ShapeException($"copy_into: shape {Shapes.Format(srcLayout.Shape)} into {Shapes.Format(dstLayout.Shape)}");
        CopyStrided(src, srcLayout, dst, dstLayout, "copy_into");
    }

    void CopyStrided(Storage src, Layout sl, Storage dst, Layout dl, string op)
    {
        int n = sl.Count;
        if (n == 0) return;
        var sp = P(src, sl, op); var dp = P(dst, dl, op);
        if (sl.IsContiguous && dl.IsContiguous)
        {
            Context.MakeCurrent();
            CudaDriver.Check(CudaDriver.cuMemcpyDtoDAsync_v2(dp, sp, (nuint)((long)n * src.DType.SizeOf()), Context.Stream));
            return;
        }
        var s = Strided3.Make(op, sl.Shape, sl.Strides, dl.Strides);
        string k = src.DType.SizeOf() switch { 2 => "copy_into_bf16", 4 => "copy_into_i32", _ => "copy_into_i64" };   // bits moved
        Launch("pointwise", k, n, new KernelArgs().Add((long)n).AddStruct(s).Add(sp).Add(dp));
    }

    /// <inheritdoc />
    public Storage Cast(StorageView srcView, DType to)
    {
        var (src, layout) = srcView;
        if (src.DType == to) return Contiguous(srcView);
        if (ChannelsLastFor(to) && PointwiseNhwc(srcView))   // a channels-last activation stays channels-last
            return RunPointwiseNhwc([srcView], to, "cast", (count, s, p, dst) =>
                Launch("pointwise", $"cast_{Sfx(src.DType)}_{Sfx(to)}", count, new KernelArgs().Add(count).AddStruct(s).Add(p[0]).Add(dst)));
        int n = layout.Count;
        var y = New(to, n);
        if (n == 0) return y;
        var src0 = P(src, layout, "cast");
        // Dense float32 ↔ bf16 (the autocast edges): 16-byte vector kernels when the source is 16-byte aligned.
        if (layout.IsContiguous && src0.Address % 16 == 0 && (src.DType, to) is (DType.Float32, DType.BFloat16) or (DType.BFloat16, DType.Float32))
        {
            Launch("layout", $"cast_dense_{Sfx(src.DType)}_{Sfx(to)}", (n + 7) / 8, new KernelArgs().Add((long)n).Add(src0).Add(y.Ptr));
            return y;
        }
        var s = Strided3.Make("cast", layout.Shape, layout.Strides);
        Launch("pointwise", $"cast_{Sfx(src.DType)}_{Sfx(to)}", n, new KernelArgs().Add((long)n).AddStruct(s).Add(P(src, layout, "cast")).Add(y.Ptr));
        return y;
    }

    /// <inheritdoc />
    public void Fill(StorageView dstView, double value)
    {
        var (dst, layout) = dstView;
        int n = layout.Count;
        if (n == 0) return;
        var s = Strided3.Make("fill", layout.Shape, layout.Strides);
        var p = P(dst, layout, "fill");
        var args = new KernelArgs().Add((long)n).AddStruct(s);
        switch (dst.DType)
        {
            case DType.Float32: args.Add(BitConverter.SingleToInt32Bits((float)value)); break;
            case DType.Float64: args.Add(BitConverter.DoubleToInt64Bits(value)); break;
            case DType.Int32: args.Add((int)value); break;
            case DType.Int64: args.Add((long)value); break;
            case DType.BFloat16: args.Add((int)BFloat16.FromFloat((float)value).Bits); break;   // the kernel takes the 16 bits in an int
            default: throw new NotSupportedException($"fill on cuda: dtype {dst.DType.Name()} is not supported");
        }
        string kernel = dst.DType.SizeOf() switch { 2 => "fill_strided_bf16", 4 => "fill_strided_i32", _ => "fill_strided_i64" };
        Launch("pointwise", kernel, n, args.Add(p));
    }

    /// <summary>Waits for all queued work on this device (timing, tests); reading values synchronises by itself.</summary>
    public void Synchronize() => Context.Synchronize();
}
