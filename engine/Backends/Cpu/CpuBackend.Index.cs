using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public (Storage Values, Storage Indices) TopK(StorageView xView, int dim, int k, bool largest)
    {
        var (x, layout) = xView;
        return x.DType switch
        {
            DType.Float32 => TopKT<float>(x, layout, dim, k, largest),
            DType.Float64 => TopKT<double>(x, layout, dim, k, largest),
            DType.Int32 => TopKT<int>(x, layout, dim, k, largest),
            DType.Int64 => TopKT<long>(x, layout, dim, k, largest),
            DType.BFloat16 => TopKBf16(xView, dim, k, largest),
            _ => throw Unsupported("topk", x.DType),
        };
    }

    private (Storage, Storage) TopKT<T>(Storage xs, Layout l, int dim, int k, bool largest) where T : unmanaged, INumber<T>
    {
        var x = Arr<T>(xs);
        int n = l.Shape[dim];
        if (k < 0 || k > n) throw new ShapeException($"topk: k = {k} is outside [0, {n}] for dim {dim} of {Shapes.Format(l.Shape)}");
        var outShape = (int[])l.Shape.Clone();
        outShape[dim] = k;
        int count = Shapes.Count(outShape);
        var valS = NewStorage(xs.DType, count);
        var idxS = NewStorage(DType.Int64, count);
        var vals = valS.Array<T>(); var idxs = idxS.Array<long>();
        if (k == 0) return (valS, idxS);
        // x: [..., n, ...] walked as rows along dim; values/indices: [..., k, ...] contiguous.
        var outStrides = Shapes.ContiguousStrides(outShape);
        var (shape, st) = DimRows.MoveDimLast(l.Shape, dim, l.Strides, outStrides);
        int sx = st[0][^1], so = outStrides[dim];
        // The walk's row count comes from x's shape; the output offsets only use the other dims.
        st[1][^1] = 0;
        // Per chunk: a row buffer, the order being sorted and its comparison (a total order: by value,
        // NaN above everything, then the lower index first).
        DimRows.ForEachRow(Options, shape, st, [l.Offset, 0], n, () => new T[n], buf =>
        {
            var order = new int[n];
            Comparison<int> cmp = (a, b) =>
            {
                T va = buf[a], vb = buf[b];
                bool na = T.IsNaN(va), nb = T.IsNaN(vb);
                int c = na || nb ? (na == nb ? 0 : na ? 1 : -1) : va < vb ? -1 : va > vb ? 1 : 0;
                if (largest) c = -c;
                return c != 0 ? c : a.CompareTo(b);
            };
            return off =>
            {
                for (int i = 0; i < n; i++) { buf[i] = x[off[0] + i * sx]; order[i] = i; }
                order.AsSpan().Sort(cmp);
                for (int j = 0; j < k; j++)
                {
                    vals[off[1] + j * so] = buf[order[j]];
                    idxs[off[1] + j * so] = order[j];
                }
            };
        });
        return (valS, idxS);
    }

    /// <inheritdoc />
    public Storage Gather(StorageView xView, int dim, StorageView indexView)
    {
        var (x, lx) = xView;
        var (index, li) = indexView;
        if (x.DType == DType.BFloat16) return GatherBf16(xView, dim, indexView);
        return index.DType switch
        {
            DType.Int64 => GatherI<long>(x, lx, dim, index, li),
            DType.Int32 => GatherI<int>(x, lx, dim, index, li),
            _ => throw new NotSupportedException($"gather: index must be int64 or int32, got {index.DType.Name()}"),
        };
    }

    private Storage GatherI<TI>(Storage x, Layout lx, int dim, Storage index, Layout li) where TI : unmanaged, IBinaryInteger<TI> => x.DType switch
    {
        DType.Float32 => GatherT<float, TI>(x, lx, dim, index, li),
        DType.Float64 => GatherT<double, TI>(x, lx, dim, index, li),
        DType.Int32 => GatherT<int, TI>(x, lx, dim, index, li),
        DType.Int64 => GatherT<long, TI>(x, lx, dim, index, li),
        _ => throw Unsupported("gather", x.DType),
    };

    private Storage GatherT<T, TI>(Storage xs, Layout lx, int dim, Storage ixs, Layout li) where T : unmanaged where TI : unmanaged, IBinaryInteger<TI>
    {
        var x = Arr<T>(xs); var idx = Arr<TI>(ixs);
        var outS = NewStorage(xs.DType, li.Count);
        var y = outS.Array<T>();
        int n = li.Shape[dim], size = lx.Shape[dim], sxd = lx.Strides[dim];
        // index, y: [..., n, ...]; x: [..., size, ...] with every other dim at least the index's.
        var (shape, st) = DimRows.MoveDimLast(li.Shape, dim, lx.Strides, li.Strides, Shapes.ContiguousStrides(li.Shape));
        int si = st[1][^1], sy = st[2][^1];
        DimRows.ForEachRow(Options, shape, st, [lx.Offset, li.Offset, 0], n, off =>
        {
            for (int j = 0; j < n; j++)
            {
                long k = long.CreateTruncating(idx[off[1] + j * si]);
                if ((ulong)k >= (ulong)size) throw new IndexOutOfRangeException($"gather: index {k} is out of bounds for dim {dim} of size {size} in {Shapes.Format(lx.Shape)}");
                y[off[2] + j * sy] = x[off[0] + (int)k * sxd];
            }
        });
        return outS;
    }

    /// <inheritdoc />
    public Storage ScatterAdd(StorageView xView, int dim, StorageView indexView, StorageView srcView)
    {
        var (x, lx) = xView;
        var (index, li) = indexView;
        var (src, ls) = srcView;
        if (x.DType == DType.BFloat16) return ScatterAddBf16(xView, dim, indexView, srcView);
        return index.DType switch
        {
            DType.Int64 => ScatterAddI<long>(x, lx, dim, index, li, src, ls),
            DType.Int32 => ScatterAddI<int>(x, lx, dim, index, li, src, ls),
            _ => throw new NotSupportedException($"scatter_add: index must be int64 or int32, got {index.DType.Name()}"),
        };
    }

    private Storage ScatterAddI<TI>(Storage x, Layout lx, int dim, Storage index, Layout li, Storage src, Layout ls) where TI : unmanaged, IBinaryInteger<TI> => x.DType switch
    {
        DType.Float32 => ScatterAddT<float, TI>(x, lx, dim, index, li, src, ls),
        DType.Float64 => ScatterAddT<double, TI>(x, lx, dim, index, li, src, ls),
        DType.Int32 => ScatterAddT<int, TI>(x, lx, dim, index, li, src, ls),
        DType.Int64 => ScatterAddT<long, TI>(x, lx, dim, index, li, src, ls),
        _ => throw Unsupported("scatter_add", x.DType),
    };

    private Storage ScatterAddT<T, TI>(Storage xs, Layout lx, int dim, Storage ixs, Layout li, Storage ss, Layout ls)
        where T : unmanaged, INumber<T> where TI : unmanaged, IBinaryInteger<TI>
    {
        var idx = Arr<TI>(ixs); var src = Arr<T>(ss);
        var outS = NewStorage(xs.DType, lx.Count);
        var y = outS.Array<T>();
        Gather(Options, Arr<T>(xs), lx, y);
        int n = li.Shape[dim], size = lx.Shape[dim];
        var yStrides = Shapes.ContiguousStrides(lx.Shape);
        int syd = yStrides[dim];
        // index: [..., n, ...]; src at least that size; y: x's shape. Rows (the other dims' positions)
        // write disjoint outputs, so chunks run in parallel while each row adds in order along dim.
        var (shape, st) = DimRows.MoveDimLast(li.Shape, dim, li.Strides, ls.Strides, yStrides);
        int si = st[0][^1], ssd = st[1][^1];
        DimRows.ForEachRow(Options, shape, st, [li.Offset, ls.Offset, 0], n, off =>
        {
            for (int j = 0; j < n; j++)
            {
                long k = long.CreateTruncating(idx[off[0] + j * si]);
                if ((ulong)k >= (ulong)size) throw new IndexOutOfRangeException($"scatter_add: index {k} is out of bounds for dim {dim} of size {size} in {Shapes.Format(lx.Shape)}");
                y[off[2] + (int)k * syd] += src[off[1] + j * ssd];
            }
        });
        return outS;
    }
}
