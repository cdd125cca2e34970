using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// The reference backend: managed arrays, every op written plainly, multi-threaded over
/// deterministic chunks. Other backends are tested against it. Split in one file per op family.
/// <para>
/// A backend owns its <see cref="Options"/> (threads, paths it must not take, conv thresholds), read once per call.
/// Tensors on the CPU use <see cref="Default"/> (options from the environment) unless a flow installs another one with
/// <see cref="BackendRegistry.Use"/>: <c>using var _ = BackendRegistry.Use(new CpuBackend(options));</c>. Storages are
/// plain managed arrays, so every CPU backend reads every CPU storage; backends differ only in how they compute.
/// </para>
/// </summary>
public sealed partial class CpuBackend : IBackend
{
    private static readonly Lazy<CpuBackend> DefaultBackend = new(() => new CpuBackend(CpuBackendOptions.FromEnvironment()));

    /// <summary>The process's default CPU backend, built once from <see cref="CpuBackendOptions.FromEnvironment"/>.</summary>
    public static CpuBackend Default => DefaultBackend.Value;

    /// <summary>A CPU backend with <paramref name="options"/> (null: the code defaults, <see cref="CpuBackendOptions.Defaults"/>).</summary>
    public CpuBackend(CpuBackendOptions? options = null) => Options = options ?? CpuBackendOptions.Defaults;

    /// <summary>This backend's settings.</summary>
    public CpuBackendOptions Options { get; }

    /// <summary>A backend like this one with other options.</summary>
    public CpuBackend With(CpuBackendOptions options) => new(options);

    /// <inheritdoc />
    public Device Device => Device.Cpu;

    internal static CpuStorage NewStorage(DType dtype, int length, bool zero = false) => CpuStorage.Rent(dtype, length, zero);

    /// <summary>The error for a dtype a primitive has no implementation for: names the op and the dtype.</summary>
    internal static NotSupportedException Unsupported(string op, DType dtype)
        => new($"{op}: dtype {dtype.Name()} is not supported by the cpu backend");

    internal static T[] Arr<T>(Storage s) where T : unmanaged => s is CpuStorage c
        ? c.Array<T>()
        : throw new InvalidOperationException($"a {s.Device} storage was handed to the CPU backend");

    /// <inheritdoc />
    public Storage Allocate(DType dtype, int length) => NewStorage(dtype, length, zero: true);

    /// <inheritdoc />
    public Storage Upload<T>(ReadOnlySpan<T> data) where T : unmanaged
    {
        var s = NewStorage(DTypeInfo.Of<T>(), data.Length);
        data.CopyTo(s.Array<T>());
        return s;
    }

    /// <inheritdoc />
    public void Download<T>(StorageView srcView, Span<T> dst) where T : unmanaged
    {
        var (src, layout) = srcView;
        var a = Arr<T>(src);
        if (layout.IsContiguous) { a.AsSpan(layout.Offset, layout.Count).CopyTo(dst); return; }
        var tmp = new T[layout.Count];
        Gather(Options, a, layout, tmp);
        tmp.CopyTo(dst);
    }

    /// <inheritdoc />
    public Storage Contiguous(StorageView srcView)
    {
        var (src, layout) = srcView;
        return src.DType switch
        {
            DType.Float32 => ContiguousT<float>(src, layout),
            DType.Float64 => ContiguousT<double>(src, layout),
            DType.Int32 => ContiguousT<int>(src, layout),
            DType.Int64 => ContiguousT<long>(src, layout),
            DType.BFloat16 => ContiguousT<BFloat16>(src, layout),   // bits copied
            _ => throw Unsupported("contiguous", src.DType),
        };
    }

    private Storage ContiguousT<T>(Storage src, Layout layout) where T : unmanaged
    {
        var s = NewStorage(src.DType, layout.Count);
        Gather(Options, Arr<T>(src), layout, s.Array<T>());
        return s;
    }

    /// <summary>Copies the elements a layout selects into a dense array.</summary>
    internal static void Gather<T>(CpuBackendOptions options, T[] src, Layout layout, T[] dst) where T : unmanaged
    {
        if (layout.IsContiguous) { Array.Copy(src, layout.Offset, dst, 0, layout.Count); return; }
        var (shape, st) = StridedIter.Coalesce(layout.Shape, layout.Strides, Shapes.ContiguousStrides(layout.Shape));
        int inner = shape[^1], sIn = st[0][^1];
        long rows = layout.Count / Math.Max(inner, 1);
        int[] bases = [layout.Offset, 0];
        StridedIter.ParallelChunks(options, rows, inner, (lo, hi) =>
        {
            Span<int> off = stackalloc int[2];
            var counter = new int[shape.Length];
            StridedIter.RowOffsets(shape, st, bases, lo, off);
            StridedIter.RowCounter(shape, lo, counter);
            for (long r = lo; r < hi; r++)
            {
                int o = off[0], d = (int)(r * inner);
                for (int i = 0; i < inner; i++, o += sIn) dst[d + i] = src[o];
                StridedIter.NextRow(shape, st, counter, off);
            }
        });
    }

    /// <inheritdoc />
    public void CopyInto(StorageView srcView, StorageView dstView)
    {
        var (src, srcLayout) = srcView;
        var (dst, dstLayout) = dstView;
        if (src.DType != dst.DType) throw new InvalidOperationException($"copy_into: dtype {src.DType.Name()} into {dst.DType.Name()}");
        if (!Shapes.Equal(srcLayout.Shape, dstLayout.Shape)) throw new ShapeException($"copy_into: shape {Shapes.Format(srcLayout.Shape)} into {Shapes.Format(dstLayout.Shape)}");
        switch (src.DType)
        {
            case DType.Float32: CopyIntoT<float>(Arr<float>(src), srcLayout, Arr<float>(dst), dstLayout); break;
            case DType.Float64: CopyIntoT<double>(Arr<double>(src), srcLayout, Arr<double>(dst), dstLayout); break;
            case DType.Int32: CopyIntoT<int>(Arr<int>(src), srcLayout, Arr<int>(dst), dstLayout); break;
            case DType.Int64: CopyIntoT<long>(Arr<long>(src), srcLayout, Arr<long>(dst), dstLayout); break;
            case DType.BFloat16: CopyIntoT<BFloat16>(Arr<BFloat16>(src), srcLayout, Arr<BFloat16>(dst), dstLayout); break;
            default: throw Unsupported("copy_into", src.DType);
        }
    }

    private void CopyIntoT<T>(T[] src, Layout sl, T[] dst, Layout dl) where T : unmanaged
    {
        var (shape, st) = StridedIter.Coalesce(sl.Shape, sl.Strides, dl.Strides);
        int inner = shape[^1], sS = st[0][^1], sD = st[1][^1];
        long rows = sl.Count / Math.Max(inner, 1);
        int[] bases = [sl.Offset, dl.Offset];
        StridedIter.ParallelChunks(Options, rows, inner, (lo, hi) =>
        {
            Span<int> off = stackalloc int[2];
            var counter = new int[shape.Length];
            StridedIter.RowOffsets(shape, st, bases, lo, off);
            StridedIter.RowCounter(shape, lo, counter);
            for (long r = lo; r < hi; r++)
            {
                if (sS == 1 && sD == 1) Array.Copy(src, off[0], dst, off[1], inner);
                else for (int i = 0, a = off[0], b = off[1]; i < inner; i++, a += sS, b += sD) dst[b] = src[a];
                StridedIter.NextRow(shape, st, counter, off);
            }
        });
    }

    /// <inheritdoc />
    public Storage Cast(StorageView srcView, DType to)
    {
        var (src, layout) = srcView;
        if (src.DType == to) return Contiguous(srcView);
        // bf16 goes through float32 both ways, as the CUDA cast kernels do: widening is exact, narrowing from
        // float64/int32/int64 rounds to float first and then once more to the nearest even bf16.
        if (src.DType == DType.BFloat16)
        {
            var wide = WidenBf16(srcView);
            if (to == DType.Float32) return wide;
            try { return Cast(StorageView.Dense(wide, layout.Shape), to); }
            finally { wide.Release(); }
        }
        if (to == DType.BFloat16)
        {
            if (src.DType == DType.Float32) return RoundToBf16(Contiguous(srcView));
            return RoundToBf16(Cast(srcView, DType.Float32));
        }
        return src.DType switch
        {
            DType.Float32 => CastFrom<float>(src, layout, to),
            DType.Float64 => CastFrom<double>(src, layout, to),
            DType.Int32 => CastFrom<int>(src, layout, to),
            DType.Int64 => CastFrom<long>(src, layout, to),
            _ => throw Unsupported("cast", src.DType),
        };
    }

    private Storage CastFrom<TIn>(Storage src, Layout layout, DType to) where TIn : unmanaged, INumber<TIn>
    {
        var dense = layout.IsContiguous ? null : new TIn[layout.Count];
        if (dense is not null) Gather(Options, Arr<TIn>(src), layout, dense);
        var input = dense is null ? Arr<TIn>(src).AsSpan(layout.Offset, layout.Count) : dense;
        var s = NewStorage(to, layout.Count);
        switch (to)
        {
            case DType.Float32: CastSpan(input, s.Array<float>()); break;
            case DType.Float64: CastSpan(input, s.Array<double>()); break;
            case DType.Int32: CastSpan(input, s.Array<int>()); break;
            case DType.Int64: CastSpan(input, s.Array<long>()); break;
            default: s.Release(); throw Unsupported("cast", to);
        }
        return s;
    }

    private static void CastSpan<TIn, TOut>(ReadOnlySpan<TIn> src, Span<TOut> dst) where TIn : INumber<TIn> where TOut : INumber<TOut>
    {
        for (int i = 0; i < src.Length; i++) dst[i] = TOut.CreateTruncating(src[i]);
    }

    /// <inheritdoc />
    public void Fill(StorageView dstView, double value)
    {
        var (dst, layout) = dstView;
        switch (dst.DType)
        {
            case DType.Float32: FillT(Arr<float>(dst), layout, (float)value); break;
            case DType.Float64: FillT(Arr<double>(dst), layout, value); break;
            case DType.Int32: FillT(Arr<int>(dst), layout, (int)value); break;
            case DType.Int64: FillT(Arr<long>(dst), layout, (long)value); break;
            case DType.BFloat16: FillT(Arr<BFloat16>(dst), layout, BFloat16.FromFloat((float)value)); break;   // through float, as (BFloat16)double
            default: throw Unsupported("fill", dst.DType);
        }
    }

    private void FillT<T>(T[] dst, Layout layout, T value) where T : unmanaged
    {
        if (layout.IsContiguous) { dst.AsSpan(layout.Offset, layout.Count).Fill(value); return; }
        var tmp = new T[layout.Count];
        tmp.AsSpan().Fill(value);
        CopyIntoT(tmp, Layout.Contiguous(layout.Shape), dst, layout);
    }
}
