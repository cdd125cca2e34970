namespace MtlMoe.Engine.Backends.Cuda;

// Reductions (kernels/reduce.cu, one dim at a time over a dense [outer, len, inner] view, fixed order). A bf16 input
// is read by the _bf16 kernels, accumulated in float32 and written as float32, so later passes run the f32 kernels.
public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public Storage Reduce(ReduceOp op, StorageView xView, int[] dims)
    {
        var (x, layout) = xView;
        // Integer reductions (label counts and the like) are rare and small: host fallback, no integer kernels.
        if (!x.DType.IsFloat()) return OnHost([x], (cpu, h) => cpu.Reduce(op, new(h[0], layout), dims));
        if (dims.Length == 0) return x.DType == DType.BFloat16 ? Cast(xView, DType.Float32) : Contiguous(xView);
        var outType = x.DType == DType.BFloat16 ? DType.Float32 : x.DType;
        var shape = (int[])layout.Shape.Clone();
        bool arg = op is ReduceOp.ArgMax or ReduceOp.ArgMin;
        string name = op switch { ReduceOp.Sum => "sum", ReduceOp.Max => "max", ReduceOp.Min => "min", ReduceOp.ArgMax => "argmax", _ => "argmin" };
        Storage cur = Dense(x, layout, "reduce");
        try
        {
            foreach (var (d0, d1) in ReducedRuns(dims, arg))
            {
                // The run d0..d1 of adjacent reduced dims is one dim of a dense [outer, len, inner] view.
                long outer = 1, len = 1, inner = 1;
                for (int i = 0; i < d0; i++) outer *= shape[i];
                for (int i = d0; i <= d1; i++) len *= shape[i];
                for (int i = d1 + 1; i < shape.Length; i++) inner *= shape[i];
                int outputs = (int)(outer * inner);
                Storage y;
                if (len == 0)
                {
                    if (op != ReduceOp.Sum) throw new ArgumentException($"{name}: reducing an empty dim {d0} of {Shapes.Format(layout.Shape)}");
                    y = NewZeroed(outType, outputs);
                }
                else
                {
                    // Few outputs over a long dim: fixed-size chunks first (deterministic: the split depends on the shape alone).
                    while (!arg && outputs < SplitBelowOutputs && len >= SplitFromLength)
                    {
                        long chunks = (len + ReduceChunk - 1) / ReduceChunk;
                        var part = New(outType, checked((int)(outer * chunks * inner)));
                        Launch("reduce", $"{name}_chunks_{Sfx(cur.DType)}", outer * chunks * inner,
                            new KernelArgs().Add(outer).Add(len).Add(inner).Add((long)ReduceChunk).Add(P(cur)).Add(part.Ptr));
                        cur.Release();
                        cur = part;
                        len = chunks;
                    }
                    var yc = arg ? New(DType.Int64, outputs) : New(outType, outputs);
                    if (inner == 1)
                        Context.Launch("reduce", $"{name}_rows_{Sfx(cur.DType)}", Math.Min(outer, 1 << 20), 256,
                            new KernelArgs().Add(outer).Add(len).Add(P(cur)).Add(yc.Ptr));
                    else
                        Launch("reduce", $"{name}_{Sfx(cur.DType)}", outer * inner,
                            new KernelArgs().Add(outer).Add(len).Add(inner).Add(P(cur)).Add(yc.Ptr));
                    y = yc;
                }
                cur.Release();
                cur = y;
                for (int i = d0; i <= d1; i++) shape[i] = 1;
            }
            var r = cur; cur = null!; return r;
        }
        finally { cur?.Release(); }
    }

    // Chunked first pass when fewer outputs than this share a reduced dim at least SplitFromLength long.
    const int SplitBelowOutputs = 8192, SplitFromLength = 512, ReduceChunk = 64;

    /// <summary>
    /// The reduced dims as runs of adjacent dims (sorted, distinct), each reduced in one pass; argmax/argmin keep one dim
    /// per pass (their index is along that dim).
    /// </summary>
    static List<(int First, int Last)> ReducedRuns(int[] dims, bool single)
    {
        var sorted = dims.Distinct().Order().ToArray();
        var runs = new List<(int, int)>();
        foreach (var d in sorted)
        {
            if (!single && runs.Count > 0 && runs[^1].Item2 == d - 1) runs[^1] = (runs[^1].Item1, d);
            else runs.Add((d, d));
        }
        return runs;
    }
}
