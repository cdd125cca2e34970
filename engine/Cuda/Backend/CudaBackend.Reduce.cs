using MtlMoe.Engine.Backends;

namespace MtlMoe.Engine.Cuda;

// Reductions (kernels/reduce.cu, one dim at a time over a dense [outer, len, inner] view, fixed order) and
// softmax / log-softmax (kernels/softmax.cu, last dim; other dims are moved last by a strided copy).
public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public Storage Reduce(ReduceOp op, Storage x, Layout layout, int[] dims)
    {
        // Integer reductions (label counts and the like) are rare and small: host fallback, no integer kernels.
        if (!x.DType.IsFloat()) return OnHost([x], (cpu, h) => cpu.Reduce(op, h[0], layout, dims));
        if (dims.Length == 0) return Contiguous(x, layout);
        var shape = (int[])layout.Shape.Clone();
        Storage cur = Dense(x, layout, "reduce");
        try
        {
            foreach (var d in dims)
            {
                long outer = 1, inner = 1;
                for (int i = 0; i < d; i++) outer *= shape[i];
                for (int i = d + 1; i < shape.Length; i++) inner *= shape[i];
                int len = shape[d];
                bool arg = op is ReduceOp.ArgMax or ReduceOp.ArgMin;
                var y = arg ? New(DType.Int64, (int)(outer * inner)) : New(x.DType, (int)(outer * inner));
                if (len == 0)
                {
                    if (op != ReduceOp.Sum) { y.Release(); throw new ArgumentException($"{op.ToString().ToLowerInvariant()}: reducing an empty dim {d} of {Shapes.Format(layout.Shape)}"); }
                    y.Release();
                    y = NewZeroed(x.DType, (int)(outer * inner));
                }
                else
                {
                    string name = op switch { ReduceOp.Sum => "sum", ReduceOp.Max => "max", ReduceOp.Min => "min", ReduceOp.ArgMax => "argmax", _ => "argmin" };
                    long rows = outer;
                    if (inner == 1)
                        Context.Launch("reduce", $"{name}_rows_{Sfx(x.DType)}", Math.Min(rows, 1 << 20), 256,
                            new KernelArgs().Add(rows).Add((long)len).Add(P(cur)).Add(y.Ptr));
                    else
                        Launch("reduce", $"{name}_{Sfx(x.DType)}", outer * inner,
                            new KernelArgs().Add(outer).Add((long)len).Add(inner).Add(P(cur)).Add(y.Ptr));
                }
                cur.Release();
                cur = y;
                shape[d] = 1;
            }
            var r = cur; cur = null!; return r;
        }
        finally { cur?.Release(); }
    }

    /// <inheritdoc />
    public Storage Softmax(Storage x, Layout layout, int dim, bool log)
    {
        RequireF32(log ? "log_softmax" : "softmax", x.DType);
        int rank = layout.Rank;
        // Move dim last: perm = (others..., dim).
        var perm = Enumerable.Range(0, rank).Where(i => i != dim).Append(dim).ToArray();
        var pl = new Layout(perm.Select(i => layout.Shape[i]).ToArray(), perm.Select(i => layout.Strides[i]).ToArray(), layout.Offset);
        var dense = Dense(x, pl, "softmax");
        var y = New(x.DType, layout.Count);
        try
        {
            int cols = layout.Shape[dim];
            long rows = cols == 0 ? 0 : layout.Count / cols;
            if (rows > 0)
                Context.Launch("softmax", log ? "log_softmax_f32" : "softmax_f32", Math.Min(rows, 1 << 20), 256,
                    new KernelArgs().Add(rows).Add((long)cols).Add(P(dense)).Add(y.Ptr));
        }
        finally { dense.Release(); }
        if (dim == rank - 1) return y;
        // y is dense in the permuted order; read it back in the original order.
        var ps = Shapes.ContiguousStrides(pl.Shape);
        var strides = new int[rank];
        for (int j = 0; j < rank; j++) strides[perm[j]] = ps[j];
        try { return Contiguous(y, new Layout((int[])layout.Shape.Clone(), strides, 0)); }
        finally { y.Release(); }
    }
}
