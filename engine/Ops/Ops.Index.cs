using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// Checks that <paramref name="index"/> is an Int64/Int32 tensor on x's device whose values lie in
    /// [0, <paramref name="size"/>); otherwise throws (ArgumentOutOfRangeException for a value) with a
    /// message naming the op, the offending value, the bound and the shapes.
    /// <c>what</c> says what the bound is ("dim 1 of size 3", "3 classes"); <c>noun</c> names the index
    /// in messages ("index", "label").
    /// </summary>
    internal static void CheckIndex(string op, Tensor x, Tensor index, int size, string what, string noun = "index")
    {
        SameDevice(op, x, index);
        string shapes = ReferenceEquals(x, index) ? $"{noun}s {Shapes.Format(index.Shape)}" : $"input {Shapes.Format(x.Shape)}, {noun}s {Shapes.Format(index.Shape)}";
        if (index.DType is not (DType.Int64 or DType.Int32))
            throw new ArgumentException($"{op}: {noun}s must be int64 or int32, got {index.DType.Name()} ({shapes})");
        if (index.Count == 0) return;
        using var _ = GradMode.NoGrad();
        using var lo = Min(index);
        using var hi = Max(index);
        long l = (long)lo.Item(), h = (long)hi.Item();
        if (l < 0 || h >= size)
            throw new ArgumentOutOfRangeException(noun, $"{op}: {noun} {(l < 0 ? l : h)} is out of bounds for {what} ({shapes})");
    }

    private static void CheckIndex(string op, Tensor x, Tensor index, int dim)
        => CheckIndex(op, x, index, x.Shape[dim], $"dim {dim} of size {x.Shape[dim]}");

    /// <summary>
    /// The <paramref name="k"/> largest (or smallest) values along <paramref name="dim"/>, sorted
    /// (largest first when <paramref name="largest"/>), with their Int64 indices; equal values go to the
    /// lower index first. Values carry the gradient (scattered back to the chosen positions); indices carry none.
    /// </summary>
    public static (Tensor Values, Tensor Indices) TopK(Tensor x, int k, int dim = -1, bool largest = true)
    {
        if (x.Rank == 0) throw new ShapeException($"topk: input must have at least one dim, got {Shapes.Format(x.Shape)}");
        int d = Shapes.NormalizeDim(dim, x.Rank, "topk");
        if (k < 0 || k > x.Shape[d])
            throw new ShapeException($"topk: k = {k} is outside [0, {x.Shape[d]}] for dim {d} of input {Shapes.Format(x.Shape)}");
        var outShape = (int[])x.Shape.Clone();
        outShape[d] = k;
        var (vs, ids) = x.Backend.TopK(x.StorageView, d, k, largest);
        var values = Tensor.FromStorage(vs, outShape);
        var indices = Tensor.FromStorage(ids, (int[])outShape.Clone());
        var inShape = x.Shape;
        Graph.Record(values, "topk", [x], g =>
        {
            using var z = Tensor.Zeros(inShape, g.DType, g.Device);
            return [ScatterAddRaw(z, d, indices, g)];
        }, saved: [indices]);
        return (values, indices);
    }

    /// <summary>
    /// out[i] = x[i with coordinate <paramref name="dim"/> replaced by index[i]] (PyTorch's gather): the
    /// result has the index's shape, which may not exceed x's in any other dim. Backward: scatter-add.
    /// </summary>
    public static Tensor Gather(Tensor x, int dim, Tensor index)
    {
        int d = CheckGatherShapes("gather", x, dim, index, null);
        CheckIndex("gather", x, index, d);
        var y = Tensor.FromStorage(x.Backend.Gather(x.StorageView, d, index.StorageView), (int[])index.Shape.Clone());
        var inShape = x.Shape;
        Graph.Record(y, "gather", [x], g =>
        {
            using var z = Tensor.Zeros(inShape, g.DType, g.Device);
            return [ScatterAddRaw(z, d, index, g)];
        }, saved: [index]);
        return y;
    }

    /// <summary>
    /// A new tensor: x with src[i] added at x[i with coordinate <paramref name="dim"/> replaced by index[i]]
    /// for every position i of the index (PyTorch's scatter_add; src is at least the index's size in every
    /// dim, x in every dim but <paramref name="dim"/>). Deterministic: no atomics, each output sums its
    /// contributions in order. Gradients: x gets g; src gets gather(g, dim, index) (zero outside the index's extent).
    /// </summary>
    public static Tensor ScatterAdd(Tensor x, int dim, Tensor index, Tensor src)
    {
        SameDType("scatter_add", x, src); SameDevice("scatter_add", x, src);
        int d = CheckGatherShapes("scatter_add", x, dim, index, src);
        CheckIndex("scatter_add", x, index, d);
        var y = ScatterAddRaw(x, d, index, src);
        var srcShape = src.Shape;
        Graph.Record(y, "scatter_add", [x, src], g =>
        {
            Tensor? gs = null;
            if (src.RequiresGrad)
            {
                var picked = Tensor.FromStorage(g.Backend.Gather(g.StorageView, d, index.StorageView), (int[])index.Shape.Clone());
                if (Shapes.Equal(picked.Shape, srcShape)) gs = picked;
                else
                {
                    using (picked) gs = PadTo(picked, srcShape);
                }
            }
            return [x.RequiresGrad ? g : null, gs];
        }, saved: [index]);
        return y;
    }

    /// <summary>
    /// The slices of x at positions <paramref name="index"/> (1-d, repeats allowed) along <paramref name="dim"/>.
    /// Backward: index-add of the gradient (repeated indices accumulate).
    /// </summary>
    public static Tensor IndexSelect(Tensor x, int dim, Tensor index)
    {
        if (x.Rank == 0) throw new ShapeException($"index_select: input must have at least one dim, got {Shapes.Format(x.Shape)}");
        int d = Shapes.NormalizeDim(dim, x.Rank, "index_select");
        if (index.Rank != 1) throw new ShapeException($"index_select: index must be 1-d, got {Shapes.Format(index.Shape)} (input {Shapes.Format(x.Shape)})");
        CheckIndex("index_select", x, index, d);
        var outShape = (int[])x.Shape.Clone();
        outShape[d] = index.Shape[0];
        // The 1-d index seen as [1, …, n, …, 1] expanded to the output shape (stride 0 elsewhere).
        var idxStrides = new int[outShape.Length];
        idxStrides[d] = index.Layout.Strides[0];
        var idxLayout = new Layout(outShape, idxStrides, index.Layout.Offset);
        var y = Tensor.FromStorage(x.Backend.Gather(x.StorageView, d, new(index.Storage, idxLayout)), outShape);
        var inShape = x.Shape;
        Graph.Record(y, "index_select", [x], g =>
        {
            var z = Tensor.Zeros(inShape, g.DType, g.Device);
            using (z) return [Tensor.FromStorage(g.Backend.ScatterAdd(z.StorageView, d, new(index.Storage, idxLayout), g.StorageView), (int[])inShape.Clone())];
        }, saved: [index]);
        return y;
    }

    // x + scatter of src at index, without checks or gradient.
    private static Tensor ScatterAddRaw(Tensor x, int d, Tensor index, Tensor src)
        => Tensor.FromStorage(x.Backend.ScatterAdd(x.StorageView, d, index.StorageView, src.StorageView), (int[])x.Shape.Clone());

    // Zeros of `shape` with t written into its leading corner.
    private static Tensor PadTo(Tensor t, int[] shape)
    {
        var z = Tensor.Zeros(shape, t.DType, t.Device);
        var view = z.Detach();
        for (int i = 0; i < shape.Length; i++)
        {
            var next = view.Narrow(i, 0, t.Shape[i]);
            view.Dispose();
            view = next;
        }
        using (view) view.CopyFrom(t);
        return z;
    }

    // Shared shape rules of gather and scatter-add (PyTorch's): same rank; index no larger than x in the
    // dims other than dim; for scatter-add, index no larger than src in every dim.
    private static int CheckGatherShapes(string op, Tensor x, int dim, Tensor index, Tensor? src)
    {
        if (x.Rank == 0) throw new ShapeException($"{op}: input must have at least one dim, got {Shapes.Format(x.Shape)}");
        int d = Shapes.NormalizeDim(dim, x.Rank, op);
        string shapes = $"input {Shapes.Format(x.Shape)}, index {Shapes.Format(index.Shape)}" + (src is null ? "" : $", src {Shapes.Format(src.Shape)}");
        if (index.Rank != x.Rank || (src is not null && src.Rank != x.Rank))
            throw new ShapeException($"{op}: input, index{(src is null ? "" : " and src")} must have the same rank ({shapes})");
        for (int i = 0; i < x.Rank; i++)
        {
            if (i != d && index.Shape[i] > x.Shape[i])
                throw new ShapeException($"{op}: index is larger than the input in dim {i} ({shapes})");
            if (src is not null && index.Shape[i] > src.Shape[i])
                throw new ShapeException($"{op}: index is larger than src in dim {i} ({shapes})");
        }
        return d;
    }
}
