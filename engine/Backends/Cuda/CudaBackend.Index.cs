namespace MtlMoe.Engine.Backends.Cuda;

// Top-k, gather and scatter-add through kernels/index.cu (int64 indices, [outer, len, inner] views, owner-computes
// adds in index order: deterministic). bf16 has no index kernels: it runs the float32 ones on a widened copy and
// rounds once (exactly the CPU twin; top-k and gather values are exact either way).
public sealed partial class CudaBackend
{
    /// <summary>Dense copy of x with <paramref name="dim"/> moved last; <paramref name="perm"/> maps new dims to old.</summary>
    CudaStorage MoveDimLast(Storage x, Layout l, int dim, out int[] perm, out int[] permShape, string op)
    {
        perm = Enumerable.Range(0, l.Rank).Where(i => i != dim).Append(dim).ToArray();
        var p = perm;
        permShape = p.Select(i => l.Shape[i]).ToArray();
        return Dense(x, new Layout(permShape, p.Select(i => l.Strides[i]).ToArray(), l.Offset), op);
    }

    /// <summary>A dense storage in the original dim order from one dense in the permuted order (releases it).</summary>
    Storage RestoreDim(Storage y, int[] perm, int[] permShape)
    {
        int rank = perm.Length;
        if (perm[^1] == rank - 1) return y;
        var ps = Shapes.ContiguousStrides(permShape);
        var shape = new int[rank]; var strides = new int[rank];
        for (int j = 0; j < rank; j++) { shape[perm[j]] = permShape[j]; strides[perm[j]] = ps[j]; }
        try { return Contiguous(new(y, new Layout(shape, strides, 0))); }
        finally { y.Release(); }
    }

    /// <inheritdoc />
    public (Storage Values, Storage Indices) TopK(StorageView xView, int dim, int k, bool largest)
    {
        var (x, layout) = xView;
        if (x.DType == DType.BFloat16)
        {
            var wide = Cast(xView, DType.Float32);
            try
            {
                var (v, i) = TopK(StorageView.Dense(wide, layout.Shape), dim, k, largest);
                try { return (Cast(StorageView.Dense(v, [v.Length]), DType.BFloat16), i); }
                finally { v.Release(); }
            }
            finally { wide.Release(); }
        }
        // The kernel selects the largest; smallest-first (rare here) runs on the host rather than in a second kernel.
        if (!largest || !x.DType.IsFloat())
        {
            var hx = ToHost(x);
            try
            {
                var (v, i) = BackendRegistry.Cpu.TopK(new(hx, layout), dim, k, largest);
                return (ToDevice(v), ToDevice(i));
            }
            finally { hx.Release(); }
        }
        var dense = MoveDimLast(x, layout, dim, out var perm, out var permShape, "topk");
        int cols = permShape[^1];
        long rows = cols == 0 ? 0 : layout.Count / cols;
        permShape[^1] = k;
        var values = New(x.DType, (int)(rows * k)); var indices = New(DType.Int64, (int)(rows * k));
        try
        {
            Launch("index", "topk_" + Sfx(x.DType), rows, new KernelArgs().Add(rows).Add((long)cols).Add((long)k).Add(P(dense)).Add(values.Ptr).Add(indices.Ptr), block: 128);
        }
        finally { dense.Release(); }
        return (RestoreDim(values, perm, permShape), RestoreDim(indices, perm, (int[])permShape.Clone()));
    }

    /// <summary>Dense Int64 indices.</summary>
    CudaStorage Index64(Storage index, Layout li, string op) =>
        index.DType == DType.Int64 ? Dense(index, li, op) : (CudaStorage)Cast(new(index, li), DType.Int64);

    static bool SameExceptDim(int[] a, int[] b, int dim)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++) if (i != dim && a[i] != b[i]) return false;
        return true;
    }

    static (long Outer, long Inner) AroundDim(int[] shape, int dim)
    {
        long o = 1, n = 1;
        for (int i = 0; i < dim; i++) o *= shape[i];
        for (int i = dim + 1; i < shape.Length; i++) n *= shape[i];
        return (o, n);
    }

    /// <inheritdoc />
    public Storage Gather(StorageView xView, int dim, StorageView indexView)
    {
        var (x, lx) = xView;
        var (index, li) = indexView;
        if (x.DType == DType.BFloat16) return ViaFloat32([xView, indexView], v => Gather(v[0], dim, v[1]));
        // The kernel needs the index to match x outside dim; a smaller index (a corner of x) runs on the host.
        if (!SameExceptDim(lx.Shape, li.Shape, dim) || !x.DType.IsFloat())
            return OnHost([x, index], (cpu, h) => cpu.Gather(new(h[0], lx), dim, new(h[1], li)));
        var (outer, inner) = AroundDim(lx.Shape, dim);
        var xd = Dense(x, lx, "gather"); var id = Index64(index, li, "gather");
        var y = New(x.DType, li.Count);
        try
        {
            Launch("index", "gather_" + Sfx(x.DType), li.Count, new KernelArgs().Add(outer).Add((long)lx.Shape[dim]).Add((long)li.Shape[dim]).Add(inner)
                .Add(P(xd)).Add(P(id)).Add(y.Ptr));
        }
        finally { xd.Release(); id.Release(); }
        return y;
    }

    /// <inheritdoc />
    public Storage ScatterAdd(StorageView xView, int dim, StorageView indexView, StorageView srcView)
    {
        var (x, lx) = xView;
        var (index, li) = indexView;
        var (src, ls) = srcView;
        if (x.DType == DType.BFloat16) return ViaFloat32([xView, indexView, srcView], v => ScatterAdd(v[0], dim, v[1], v[2]));
        if (!SameExceptDim(lx.Shape, li.Shape, dim) || !x.DType.IsFloat())
            return OnHost([x, index, src], (cpu, h) => cpu.ScatterAdd(new(h[0], lx), dim, new(h[1], li), new(h[2], ls)));
        var (outer, inner) = AroundDim(lx.Shape, dim);
        // src restricted to the index's shape (same strides, smaller extents), made dense.
        var sd = Dense(src, new Layout((int[])li.Shape.Clone(), ls.Strides, ls.Offset), "scatter_add");
        var id = Index64(index, li, "scatter_add");
        var added = New(x.DType, lx.Count);
        try
        {
            Launch("index", "scatter_add_" + Sfx(x.DType), lx.Count, new KernelArgs().Add(outer).Add((long)lx.Shape[dim]).Add((long)li.Shape[dim]).Add(inner)
                .Add(P(sd)).Add(P(id)).Add(added.Ptr));
            return Binary(BinaryOp.Add, xView, StorageView.Dense(added, lx.Shape));
        }
        finally { sd.Release(); id.Release(); added.Release(); }
    }
}
