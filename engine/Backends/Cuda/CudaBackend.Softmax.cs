namespace MtlMoe.Engine.Backends.Cuda;

// Softmax / log-softmax (kernels/softmax.cu, last dim; other dims are moved last by a strided copy); bf16 rows are
// reduced in float32 and the result rounded once.
public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public Storage Softmax(StorageView xView, int dim, bool log)
    {
        var (x, layout) = xView;
        RequireDType(log ? "log_softmax" : "softmax", x.DType, DType.Float32, DType.BFloat16);
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
                Context.Launch("softmax", (log ? "log_softmax_" : "softmax_") + Sfx(x.DType), Math.Min(rows, 1 << 20), 256,
                    new KernelArgs().Add(rows).Add((long)cols).Add(P(dense)).Add(y.Ptr));
        }
        finally { dense.Release(); }
        if (dim == rank - 1) return y;
        // y is dense in the permuted order; read it back in the original order.
        var ps = Shapes.ContiguousStrides(pl.Shape);
        var strides = new int[rank];
        for (int j = 0; j < rank; j++) strides[perm[j]] = ps[j];
        try { return Contiguous(new(y, new Layout((int[])layout.Shape.Clone(), strides, 0))); }
        finally { y.Release(); }
    }
}
