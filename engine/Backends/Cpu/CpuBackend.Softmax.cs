using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public Storage Softmax(StorageView xView, int dim, bool log)
    {
        var (x, layout) = xView;
        return x.DType switch
        {
            DType.Float32 => SoftmaxT<float>(x, layout, dim, log),
            DType.Float64 => SoftmaxT<double>(x, layout, dim, log),
            DType.BFloat16 => SoftmaxBf16(xView, dim, log),
            _ => throw new NotSupportedException($"softmax: needs a float tensor, got {x.DType.Name()} {Shapes.Format(layout.Shape)}"),
        };
    }

    private Storage SoftmaxT<T>(Storage xs, Layout l, int dim, bool log) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = Arr<T>(xs);
        var outS = NewStorage(xs.DType, l.Count);
        var y = outS.Array<T>();
        int n = l.Shape[dim];
        // x: [..., n, ...] walked as rows of n along dim; y: the same shape, contiguous.
        var (shape, st) = DimRows.MoveDimLast(l.Shape, dim, l.Strides, Shapes.ContiguousStrides(l.Shape));
        int sx = st[0][^1], sy = st[1][^1];
        DimRows.ForEachRow(Options, shape, st, [l.Offset, 0], n, off =>
        {
            int xo = off[0], yo = off[1];
            T max = T.NegativeInfinity;
            for (int i = 0; i < n; i++)
            {
                T v = x[xo + i * sx];
                if (v > max || T.IsNaN(v)) max = v;
            }
            // Sum in double so float32 rows of many classes stay accurate.
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                T e = T.Exp(x[xo + i * sx] - max);
                if (!log) y[yo + i * sy] = e;
                sum += double.CreateTruncating(e);
            }
            if (log)
            {
                // (x − max) − log Σ keeps float32 precise for large logits (x − max is exact near the max).
                T ls = T.CreateTruncating(Math.Log(sum));
                for (int i = 0; i < n; i++) y[yo + i * sy] = (x[xo + i * sx] - max) - ls;
            }
            else
            {
                T inv = T.CreateTruncating(1.0 / sum);
                for (int i = 0; i < n; i++) y[yo + i * sy] *= inv;
            }
        });
        return outS;
    }
}
