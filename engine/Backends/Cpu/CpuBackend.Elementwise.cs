using System.Numerics;
using System.Runtime.InteropServices;

namespace MtlMoe.Engine.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public Storage Unary(UnaryOp op, StorageView xView, double alpha = 0, double beta = 0)
    {
        var (x, layout) = xView;
        return x.DType switch
        {
            DType.Float32 => UnaryFloat<float>(op, x, layout, (float)alpha, (float)beta),
            DType.Float64 => UnaryFloat<double>(op, x, layout, alpha, beta),
            DType.Int32 => UnaryArith<int>(op, x, layout, (int)alpha, (int)beta),
            DType.Int64 => UnaryArith<long>(op, x, layout, (long)alpha, (long)beta),
            DType.BFloat16 => UnaryBf16(op, xView, alpha, beta),
            _ => throw Unsupported(op.ToString().ToLowerInvariant(), x.DType),
        };
    }

    private Storage UnaryFloat<T>(UnaryOp op, Storage x, Layout l, T a, T b) where T : unmanaged, IFloatingPointIeee754<T> => op switch
    {
        UnaryOp.Exp => Map<T, ExpFn<T>>(x, l, a, b),
        UnaryOp.Log => Map<T, LogFn<T>>(x, l, a, b),
        UnaryOp.Sqrt => Map<T, SqrtFn<T>>(x, l, a, b),
        UnaryOp.Sigmoid => Map<T, SigmoidFn<T>>(x, l, a, b),
        UnaryOp.Tanh => Map<T, TanhFn<T>>(x, l, a, b),
        UnaryOp.Softplus => Map<T, SoftplusFn<T>>(x, l, a, b),
        UnaryOp.Erf => Map<T, ErfFn<T>>(x, l, a, b),
        UnaryOp.NormCdf => Map<T, NormCdfFn<T>>(x, l, a, b),
        UnaryOp.PowScalar => Map<T, PowScalarFn<T>>(x, l, a, b),
        _ => UnaryArith<T>(op, x, l, a, b),
    };

    private Storage UnaryArith<T>(UnaryOp op, Storage x, Layout l, T a, T b) where T : unmanaged, INumber<T> => op switch
    {
        UnaryOp.Neg => Map<T, NegFn<T>>(x, l, a, b),
        UnaryOp.Abs => Map<T, AbsFn<T>>(x, l, a, b),
        UnaryOp.Sign => Map<T, SignFn<T>>(x, l, a, b),
        UnaryOp.Relu => Map<T, ReluFn<T>>(x, l, a, b),
        UnaryOp.AddScalar => Map<T, AddScalarFn<T>>(x, l, a, b),
        UnaryOp.MulScalar => Map<T, MulScalarFn<T>>(x, l, a, b),
        UnaryOp.RDivScalar => Map<T, RDivScalarFn<T>>(x, l, a, b),
        UnaryOp.Clamp => Map<T, ClampFn<T>>(x, l, a, b),
        UnaryOp.GtScalar => Map<T, GtScalarFn<T>>(x, l, a, b),
        UnaryOp.LtScalar => Map<T, LtScalarFn<T>>(x, l, a, b),
        UnaryOp.GeScalar => Map<T, GeScalarFn<T>>(x, l, a, b),
        UnaryOp.LeScalar => Map<T, LeScalarFn<T>>(x, l, a, b),
        UnaryOp.EqScalar => Map<T, EqScalarFn<T>>(x, l, a, b),
        UnaryOp.InRange => Map<T, InRangeFn<T>>(x, l, a, b),
        _ => throw new NotSupportedException($"{op}: dtype {DTypeInfo.Of<T>().Name()} is not supported"),
    };

    private Storage Map<T, TFn>(Storage xs, Layout l, T a, T b) where T : unmanaged where TFn : struct, IUnaryFn<T>
    {
        var x = Arr<T>(xs);
        int n = l.Count;
        var outS = NewStorage(xs.DType, n);
        var o = outS.Array<T>();
        if (l.IsContiguous)
        {
            int off = l.Offset;
            StridedIter.ParallelChunks(Options, n, 4, (lo, hi) => MapSpan<T, TFn>(x.AsSpan(off + (int)lo, (int)(hi - lo)), o.AsSpan((int)lo, (int)(hi - lo)), a, b));
            return outS;
        }
        var (shape, st) = StridedIter.Coalesce(l.Shape, l.Strides);
        int inner = shape[^1], sx = st[0][^1];
        int[] bases = [l.Offset];
        StridedIter.ParallelChunks(Options, n / Math.Max(inner, 1), inner * 4L, (lo, hi) =>
        {
            Span<int> off = stackalloc int[1];
            var counter = new int[shape.Length];
            StridedIter.RowOffsets(shape, st, bases, lo, off);
            StridedIter.RowCounter(shape, lo, counter);
            for (long r = lo; r < hi; r++)
            {
                int d = (int)(r * inner);
                if (sx == 1) MapSpan<T, TFn>(x.AsSpan(off[0], inner), o.AsSpan(d, inner), a, b);
                else for (int i = 0, p = off[0]; i < inner; i++, p += sx) o[d + i] = TFn.Apply(x[p], a, b);
                StridedIter.NextRow(shape, st, counter, off);
            }
        });
        return outS;
    }

    private static void MapSpan<T, TFn>(ReadOnlySpan<T> x, Span<T> o, T a, T b) where T : unmanaged where TFn : struct, IUnaryFn<T>
    {
        int i = 0;
        if (TFn.Vectorized && Vector.IsHardwareAccelerated)
        {
            var va = new Vector<T>(a); var vb = new Vector<T>(b);
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            var ov = MemoryMarshal.Cast<T, Vector<T>>(o);
            int nv = Math.Min(xv.Length, ov.Length);
            for (int v = 0; v < nv; v++) ov[v] = TFn.Apply(xv[v], va, vb);
            i = nv * Vector<T>.Count;
        }
        for (; i < x.Length; i++) o[i] = TFn.Apply(x[i], a, b);
    }

    /// <inheritdoc />
    public Storage Binary(BinaryOp op, StorageView aView, StorageView bView)
    {
        var (a, la) = aView;
        var (b, lb) = bView;
        if (a.DType != b.DType) throw new InvalidOperationException($"{op}: dtypes {a.DType.Name()} and {b.DType.Name()} differ");
        if (!Shapes.Equal(la.Shape, lb.Shape)) throw new ShapeException($"{op}: backend shapes {Shapes.Format(la.Shape)} and {Shapes.Format(lb.Shape)} differ");
        return a.DType switch
        {
            DType.Float32 => BinaryFloat<float>(op, a, la, b, lb),
            DType.Float64 => BinaryFloat<double>(op, a, la, b, lb),
            DType.Int32 => BinaryArith<int>(op, a, la, b, lb),
            DType.Int64 => BinaryArith<long>(op, a, la, b, lb),
            DType.BFloat16 => BinaryBf16(op, aView, bView),
            _ => throw Unsupported(op.ToString().ToLowerInvariant(), a.DType),
        };
    }

    private Storage BinaryFloat<T>(BinaryOp op, Storage a, Layout la, Storage b, Layout lb) where T : unmanaged, IFloatingPointIeee754<T>
        => op == BinaryOp.Pow ? Zip<T, PowFn<T>>(a, la, b, lb) : BinaryArith<T>(op, a, la, b, lb);

    private Storage BinaryArith<T>(BinaryOp op, Storage a, Layout la, Storage b, Layout lb) where T : unmanaged, INumber<T> => op switch
    {
        BinaryOp.Add => Zip<T, AddFn<T>>(a, la, b, lb),
        BinaryOp.Sub => Zip<T, SubFn<T>>(a, la, b, lb),
        BinaryOp.Mul => Zip<T, MulFn<T>>(a, la, b, lb),
        BinaryOp.Div => Zip<T, DivFn<T>>(a, la, b, lb),
        BinaryOp.Maximum => Zip<T, MaxFn<T>>(a, la, b, lb),
        BinaryOp.Minimum => Zip<T, MinFn<T>>(a, la, b, lb),
        BinaryOp.Gt => Zip<T, GtFn<T>>(a, la, b, lb),
        BinaryOp.Lt => Zip<T, LtFn<T>>(a, la, b, lb),
        BinaryOp.Ge => Zip<T, GeFn<T>>(a, la, b, lb),
        BinaryOp.Le => Zip<T, LeFn<T>>(a, la, b, lb),
        BinaryOp.Eq => Zip<T, EqFn<T>>(a, la, b, lb),
        BinaryOp.Ne => Zip<T, NeFn<T>>(a, la, b, lb),
        _ => throw new NotSupportedException($"{op}: dtype {DTypeInfo.Of<T>().Name()} is not supported"),
    };

    private Storage Zip<T, TFn>(Storage sa, Layout la, Storage sb, Layout lb) where T : unmanaged where TFn : struct, IBinaryFn<T>
    {
        var a = Arr<T>(sa); var b = Arr<T>(sb);
        int n = la.Count;
        var outS = NewStorage(sa.DType, n);
        var o = outS.Array<T>();
        if (la.IsContiguous && lb.IsContiguous)
        {
            int oa = la.Offset, ob = lb.Offset;
            StridedIter.ParallelChunks(Options, n, 2, (lo, hi) =>
                ZipSpan<T, TFn>(a.AsSpan(oa + (int)lo, (int)(hi - lo)), b.AsSpan(ob + (int)lo, (int)(hi - lo)), o.AsSpan((int)lo, (int)(hi - lo))));
            return outS;
        }
        var (shape, st) = StridedIter.Coalesce(la.Shape, la.Strides, lb.Strides);
        int inner = shape[^1], s0 = st[0][^1], s1 = st[1][^1];
        int[] bases = [la.Offset, lb.Offset];
        StridedIter.ParallelChunks(Options, n / Math.Max(inner, 1), inner * 2L, (lo, hi) =>
        {
            Span<int> off = stackalloc int[2];
            var counter = new int[shape.Length];
            StridedIter.RowOffsets(shape, st, bases, lo, off);
            StridedIter.RowCounter(shape, lo, counter);
            for (long r = lo; r < hi; r++)
            {
                int d = (int)(r * inner);
                if (s0 == 1 && s1 == 1) ZipSpan<T, TFn>(a.AsSpan(off[0], inner), b.AsSpan(off[1], inner), o.AsSpan(d, inner));
                else if (s0 == 1 && s1 == 0) ZipScalarRight<T, TFn>(a.AsSpan(off[0], inner), b[off[1]], o.AsSpan(d, inner));
                else for (int i = 0, p = off[0], q = off[1]; i < inner; i++, p += s0, q += s1) o[d + i] = TFn.Apply(a[p], b[q]);
                StridedIter.NextRow(shape, st, counter, off);
            }
        });
        return outS;
    }

    private static void ZipSpan<T, TFn>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> o) where T : unmanaged where TFn : struct, IBinaryFn<T>
    {
        int i = 0;
        if (TFn.Vectorized && Vector.IsHardwareAccelerated)
        {
            var av = MemoryMarshal.Cast<T, Vector<T>>(a);
            var bv = MemoryMarshal.Cast<T, Vector<T>>(b);
            var ov = MemoryMarshal.Cast<T, Vector<T>>(o);
            int nv = Math.Min(ov.Length, Math.Min(av.Length, bv.Length));
            for (int v = 0; v < nv; v++) ov[v] = TFn.Apply(av[v], bv[v]);
            i = nv * Vector<T>.Count;
        }
        for (; i < o.Length; i++) o[i] = TFn.Apply(a[i], b[i]);
    }

    private static void ZipScalarRight<T, TFn>(ReadOnlySpan<T> a, T b, Span<T> o) where T : unmanaged where TFn : struct, IBinaryFn<T>
    {
        int i = 0;
        if (TFn.Vectorized && Vector.IsHardwareAccelerated)
        {
            var av = MemoryMarshal.Cast<T, Vector<T>>(a);
            var ov = MemoryMarshal.Cast<T, Vector<T>>(o);
            var bv = new Vector<T>(b);
            int nv = Math.Min(ov.Length, av.Length);
            for (int v = 0; v < nv; v++) ov[v] = TFn.Apply(av[v], bv);
            i = nv * Vector<T>.Count;
        }
        for (; i < o.Length; i++) o[i] = TFn.Apply(a[i], b);
    }

    /// <inheritdoc />
    public Storage Where(StorageView condView, StorageView aView, StorageView bView)
    {
        var (cond, lc) = condView;
        var (a, la) = aView;
        var (b, lb) = bView;
        if (a.DType != b.DType) throw new InvalidOperationException($"where: dtypes {a.DType.Name()} and {b.DType.Name()} differ");
        var c = Cast(new(cond, lc), DType.Float64);
        try
        {
            var mask = Arr<double>(c);
            return a.DType switch
            {
                DType.Float32 => WhereT<float>(mask, a, la, b, lb),
                DType.Float64 => WhereT<double>(mask, a, la, b, lb),
                DType.Int32 => WhereT<int>(mask, a, la, b, lb),
                DType.Int64 => WhereT<long>(mask, a, la, b, lb),
                DType.BFloat16 => WhereT<BFloat16>(mask, a, la, b, lb),   // bits selected, nothing rounded
                _ => throw Unsupported("where", a.DType),
            };
        }
        finally { c.Release(); }
    }

    private Storage WhereT<T>(double[] mask, Storage a, Layout la, Storage b, Layout lb) where T : unmanaged
    {
        int n = la.Count;
        var ad = new T[n]; var bd = new T[n];
        Gather(Options, Arr<T>(a), la, ad); Gather(Options, Arr<T>(b), lb, bd);
        var outS = NewStorage(a.DType, n);
        var o = outS.Array<T>();
        for (int i = 0; i < n; i++) o[i] = mask[i] != 0 ? ad[i] : bd[i];
        return outS;
    }
}
