using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public Storage Reduce(ReduceOp op, StorageView xView, int[] dims)
    {
        var (x, layout) = xView;
        return x.DType switch
        {
            DType.Float32 => ReduceT<float>(op, x, layout, dims),
            DType.Float64 => ReduceT<double>(op, x, layout, dims),
            DType.Int32 => ReduceT<int>(op, x, layout, dims),
            DType.Int64 => ReduceT<long>(op, x, layout, dims),
            DType.BFloat16 => ReduceBf16(op, xView, dims),
            _ => throw Unsupported(op.ToString().ToLowerInvariant(), x.DType),
        };
    }

    private Storage ReduceT<T>(ReduceOp op, Storage xs, Layout l, int[] dims) where T : unmanaged, INumber<T>
    {
        var x = Arr<T>(xs);
        int rank = l.Rank;
        var reduced = new bool[rank];
        foreach (var d in dims) reduced[d] = true;
        // Kept dims first (they index the output), reduced dims last (they are walked per output).
        var keptShape = new List<int>(); var keptStride = new List<int>();
        var redShape = new List<int>(); var redStride = new List<int>();
        for (int i = 0; i < rank; i++)
        {
            if (reduced[i]) { redShape.Add(l.Shape[i]); redStride.Add(l.Strides[i]); }
            else { keptShape.Add(l.Shape[i]); keptStride.Add(l.Strides[i]); }
        }
        int outCount = Shapes.Count(keptShape.ToArray());
        int inner = Shapes.Count(redShape.ToArray());
        bool arg = op is ReduceOp.ArgMax or ReduceOp.ArgMin;
        var outS = NewStorage(arg ? DType.Int64 : xs.DType, outCount);
        if (inner == 0 && op != ReduceOp.Sum)
            throw new ShapeException($"{op}: reducing over an empty dim of {Shapes.Format(l.Shape)}");

        var (rShape, rSt) = StridedIter.Coalesce([.. redShape], [.. redStride]);
        int[] kShape = [.. keptShape, 1]; int[] kStride = [.. keptStride, 0];
        var outT = arg ? null : outS.Array<T>();
        var outL = arg ? outS.Array<long>() : null;

        StridedIter.ParallelChunks(Options, outCount, inner, (lo, hi) =>
        {
            var kc = new int[kShape.Length];
            Span<int> koff = stackalloc int[1];
            StridedIter.RowOffsets(kShape, [kStride], [l.Offset], lo, koff);
            StridedIter.RowCounter(kShape, lo, kc);
            var rc = new int[rShape.Length];
            for (long o = lo; o < hi; o++)
            {
                int baseOff = koff[0];
                switch (op)
                {
                    case ReduceOp.Sum: outT![o] = SumBlock(x, baseOff, rShape, rSt[0], rc); break;
                    case ReduceOp.Max: outT![o] = Extreme(x, baseOff, rShape, rSt[0], rc, max: true, out _); break;
                    case ReduceOp.Min: outT![o] = Extreme(x, baseOff, rShape, rSt[0], rc, max: false, out _); break;
                    case ReduceOp.ArgMax: Extreme(x, baseOff, rShape, rSt[0], rc, max: true, out outL![o]); break;
                    case ReduceOp.ArgMin: Extreme(x, baseOff, rShape, rSt[0], rc, max: false, out outL![o]); break;
                }
                StridedIter.NextRow(kShape, [kStride], kc, koff);
            }
        });
        return outS;
    }

    // Sums a strided block in a fixed order; floats accumulate in double for accuracy.
    private T SumBlock<T>(T[] x, int baseOff, int[] shape, int[] st, int[] counter) where T : unmanaged, INumber<T>
    {
        int inner = shape[^1], s = st[^1];
        long rows = 1;
        for (int d = 0; d < shape.Length - 1; d++) rows *= shape[d];
        Array.Clear(counter);
        Span<int> off = stackalloc int[1];
        off[0] = baseOff;
        int[][] sts = [st];
        if (typeof(T) == typeof(float) || typeof(T) == typeof(double))
        {
            double acc = 0;
            for (long r = 0; r < rows; r++)
            {
                double rowAcc = 0;
                for (int i = 0, p = off[0]; i < inner; i++, p += s) rowAcc += double.CreateTruncating(x[p]);
                acc += rowAcc;
                StridedIter.NextRow(shape, sts, counter, off);
            }
            return T.CreateTruncating(acc);
        }
        T iacc = T.Zero;
        for (long r = 0; r < rows; r++)
        {
            for (int i = 0, p = off[0]; i < inner; i++, p += s) iacc += x[p];
            StridedIter.NextRow(shape, sts, counter, off);
        }
        return iacc;
    }

    // Max or min of a strided block; index is the flat row-major position within the block (first on ties).
    private T Extreme<T>(T[] x, int baseOff, int[] shape, int[] st, int[] counter, bool max, out long index) where T : unmanaged, INumber<T>
    {
        int inner = shape[^1], s = st[^1];
        long rows = 1;
        for (int d = 0; d < shape.Length - 1; d++) rows *= shape[d];
        Array.Clear(counter);
        Span<int> off = stackalloc int[1];
        off[0] = baseOff;
        int[][] sts = [st];
        T best = x[baseOff];
        index = 0;
        long flat = 0;
        for (long r = 0; r < rows; r++)
        {
            for (int i = 0, p = off[0]; i < inner; i++, p += s, flat++)
            {
                T v = x[p];
                bool better = max ? v > best : v < best;
                if (better || (T.IsNaN(v) && !T.IsNaN(best))) { best = v; index = flat; }
            }
            StridedIter.NextRow(shape, sts, counter, off);
        }
        return best;
    }
}
