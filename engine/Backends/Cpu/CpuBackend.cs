using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// The reference backend: managed arrays, every op written plainly, multi-threaded over
/// deterministic chunks. Other backends are tested against it. Split in one file per op family.
/// </summary>
public sealed partial class CpuBackend : IBackend
{
    /// <summary>The single CPU backend.</summary>
    public static CpuBackend Instance { get; } = new();

    private static int _threads = Environment.ProcessorCount;

    /// <summary>Worker threads for CPU kernels (default: all cores). Results are identical for a fixed value.</summary>
    public static int Threads
    {
        get => _threads;
        set => _threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), "at least one thread");
    }

    private CpuBackend() { }

    /// <inheritdoc />
    public Device Device => Device.Cpu;

    internal static CpuStorage NewStorage(DType dtype, int length, bool zero = false)
        => new(CpuArrayPool.Rent(dtype, length, zero), dtype, length);

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
    public void Download<T>(Storage src, Layout layout, Span<T> dst) where T : unmanaged
    {
        var a = Arr<T>(src);
        if (layout.IsContiguous) { a.AsSpan(layout.Offset, layout.Count).CopyTo(dst); return; }
        var tmp = new T[layout.Count];
        Gather(a, layout, tmp);
        tmp.CopyTo(dst);
    }

    /// <inheritdoc />
    public Storage Contiguous(Storage src, Layout layout) => src.DType switch
    {
        DType.Float32 => ContiguousT<float>(src, layout),
        DType.Float64 => ContiguousT<double>(src, layout),
        DType.Int32 => ContiguousT<int>(src, layout),
        _ => ContiguousT<long>(src, layout),
    };

    private static Storage ContiguousT<T>(Storage src, Layout layout) where T : unmanaged
    {
        var s = NewStorage(src.DType, layout.Count);
        Gather(Arr<T>(src), layout, s.Array<T>());
        return s;
    }

    /// <summary>Copies the elements a layout selects into a dense array.</summary>
    internal static void Gather<T>(T[] src, Layout layout, T[] dst) where T : unmanaged
    {
        if (layout.IsContiguous) { Array.Copy(src, layout.Offset, dst, 0, layout.Count); return; }
        var (shape, st) = StridedIter.Coalesce(layout.Shape, layout.Strides, Shapes.ContiguousStrides(layout.Shape));
        int inner = shape[^1], sIn = st[0][^1];
        long rows = layout.Count / Math.Max(inner, 1);
        int[] bases = [layout.Offset, 0];
        StridedIter.ParallelChunks(rows, inner, (lo, hi) =>
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
    public void CopyInto(Storage src, Layout srcLayout, Storage dst, Layout dstLayout)
    {
        if (src.DType != dst.DType) throw new InvalidOperationException($"copy_into: dtype {src.DType.Name()} into {dst.DType.Name()}");
        if (!Shapes.Equal(srcLayout.Shape, dstLayout.Shape)) throw new ShapeException($"copy_into: shape {Shapes.Format(srcLayout.Shape)} into {Shapes.Format(dstLayout.Shape)}");
        switch (src.DType)
        {
            case DType.Float32: CopyIntoT<float>(Arr<float>(src), srcLayout, Arr<float>(dst), dstLayout); break;
            case DType.Float64: CopyIntoT<double>(Arr<double>(src), srcLayout, Arr<double>(dst), dstLayout); break;
            case DType.Int32: CopyIntoT<int>(Arr<int>(src), srcLayout, Arr<int>(dst), dstLayout); break;
            default: CopyIntoT<long>(Arr<long>(src), srcLayout, Arr<long>(dst), dstLayout); break;
        }
    }

    private static void CopyIntoT<T>(T[] src, Layout sl, T[] dst, Layout dl) where T : unmanaged
    {
        var (shape, st) = StridedIter.Coalesce(sl.Shape, sl.Strides, dl.Strides);
        int inner = shape[^1], sS = st[0][^1], sD = st[1][^1];
        long rows = sl.Count / Math.Max(inner, 1);
        int[] bases = [sl.Offset, dl.Offset];
        StridedIter.ParallelChunks(rows, inner, (lo, hi) =>
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
    public Storage Cast(Storage src, Layout layout, DType to)
    {
        if (src.DType == to) return Contiguous(src, layout);
        return src.DType switch
        {
            DType.Float32 => CastFrom<float>(src, layout, to),
            DType.Float64 => CastFrom<double>(src, layout, to),
            DType.Int32 => CastFrom<int>(src, layout, to),
            _ => CastFrom<long>(src, layout, to),
        };
    }

    private static Storage CastFrom<TIn>(Storage src, Layout layout, DType to) where TIn : unmanaged, INumber<TIn>
    {
        var dense = layout.IsContiguous ? null : new TIn[layout.Count];
        if (dense is not null) Gather(Arr<TIn>(src), layout, dense);
        var input = dense is null ? Arr<TIn>(src).AsSpan(layout.Offset, layout.Count) : dense;
        var s = NewStorage(to, layout.Count);
        switch (to)
        {
            case DType.Float32: CastSpan(input, s.Array<float>()); break;
            case DType.Float64: CastSpan(input, s.Array<double>()); break;
            case DType.Int32: CastSpan(input, s.Array<int>()); break;
            default: CastSpan(input, s.Array<long>()); break;
        }
        return s;
    }

    private static void CastSpan<TIn, TOut>(ReadOnlySpan<TIn> src, Span<TOut> dst) where TIn : INumber<TIn> where TOut : INumber<TOut>
    {
        for (int i = 0; i < src.Length; i++) dst[i] = TOut.CreateTruncating(src[i]);
    }

    /// <inheritdoc />
    public void Fill(Storage dst, Layout layout, double value)
    {
        switch (dst.DType)
        {
            case DType.Float32: FillT(Arr<float>(dst), layout, (float)value); break;
            case DType.Float64: FillT(Arr<double>(dst), layout, value); break;
            case DType.Int32: FillT(Arr<int>(dst), layout, (int)value); break;
            default: FillT(Arr<long>(dst), layout, (long)value); break;
        }
    }

    private static void FillT<T>(T[] dst, Layout layout, T value) where T : unmanaged
    {
        if (layout.IsContiguous) { dst.AsSpan(layout.Offset, layout.Count).Fill(value); return; }
        var tmp = new T[layout.Count];
        tmp.AsSpan().Fill(value);
        CopyIntoT(tmp, Layout.Contiguous(layout.Shape), dst, layout);
    }
}
