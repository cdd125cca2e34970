namespace MtlMoe.Engine;

public sealed partial class Tensor
{
    private Tensor ViewOfWithGrad(Layout layout, string op, Func<Tensor, Tensor>? backward = null)
    {
        var r = ViewOf(layout);
        var inShape = Shape;
        Autograd.Graph.Record(r, op, [this], backward is null ? g => [g.Reshape(inShape)] : g => [backward(g)]);
        return r;
    }

    /// <summary>Same elements in a new shape; one dim may be -1. A view when the layout allows, else a copy.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var target = ResolveShape(shape);
        if (Shapes.Equal(target, Shape)) return ViewOfWithGrad(Layout, "reshape");
        if (!IsContiguous)
        {
            using var c = Contiguous();
            return c.Reshape(target);
        }
        return ViewOfWithGrad(new Layout(target, Shapes.ContiguousStrides(target), Layout.Offset), "reshape");
    }

    /// <summary>Alias of <see cref="Reshape"/>.</summary>
    public Tensor View(params int[] shape) => Reshape(shape);

    private int[] ResolveShape(int[] shape)
    {
        var target = (int[])shape.Clone();
        int infer = -1, known = 1;
        for (int i = 0; i < target.Length; i++)
        {
            if (target[i] == -1)
            {
                if (infer >= 0) throw new ShapeException($"reshape: only one dim may be -1 in {Shapes.Format(shape)}");
                infer = i;
            }
            else if (target[i] < 0) throw new ShapeException($"reshape: negative dim in {Shapes.Format(shape)}");
            else known *= target[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || Count % known != 0) throw new ShapeException($"reshape: cannot view {Shapes.Format(Shape)} as {Shapes.Format(shape)}");
            target[infer] = Count / known;
        }
        if (Shapes.Count(target) != Count) throw new ShapeException($"reshape: cannot view {Shapes.Format(Shape)} ({Count} elements) as {Shapes.Format(shape)}");
        return target;
    }

    /// <summary>Flattens dims [start, end] into one.</summary>
    public Tensor Flatten(int start = 0, int end = -1)
    {
        if (Rank == 0) return Reshape(1);
        int s = Shapes.NormalizeDim(start, Rank, "flatten"), e = Shapes.NormalizeDim(end, Rank, "flatten");
        var shape = new List<int>();
        for (int i = 0; i < s; i++) shape.Add(Shape[i]);
        int m = 1;
        for (int i = s; i <= e; i++) m *= Shape[i];
        shape.Add(m);
        for (int i = e + 1; i < Rank; i++) shape.Add(Shape[i]);
        return Reshape([.. shape]);
    }

    /// <summary>Reorders dims without copying.</summary>
    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank) throw new ShapeException($"permute: {dims.Length} dims given for a tensor of rank {Rank} {Shapes.Format(Shape)}");
        var seen = new bool[Rank];
        var shape = new int[Rank]; var strides = new int[Rank]; var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int d = Shapes.NormalizeDim(dims[i], Rank, "permute");
            if (seen[d]) throw new ShapeException($"permute: dim {d} repeated in {Shapes.Format(dims)}");
            seen[d] = true;
            shape[i] = Shape[d]; strides[i] = Layout.Strides[d]; inverse[d] = i;
        }
        return ViewOfWithGrad(new Layout(shape, strides, Layout.Offset), "permute", g => g.Permute(inverse));
    }

    /// <summary>Swaps two dims without copying.</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        var p = new int[Rank];
        for (int i = 0; i < Rank; i++) p[i] = i;
        int a = Shapes.NormalizeDim(dim0, Rank, "transpose"), b = Shapes.NormalizeDim(dim1, Rank, "transpose");
        (p[a], p[b]) = (p[b], p[a]);
        return Permute(p);
    }

    /// <summary>Transpose of the last two dims.</summary>
    public Tensor T => Transpose(-2, -1);

    /// <summary>Elements [start, start+length) of a dim, without copying.</summary>
    public Tensor Narrow(int dim, int start, int length)
    {
        int d = Shapes.NormalizeDim(dim, Rank, "narrow");
        if (start < 0 || length < 0 || start + length > Shape[d])
            throw new ShapeException($"narrow: range [{start}, {start + length}) is outside dim {d} of size {Shape[d]} in {Shapes.Format(Shape)}");
        var shape = (int[])Shape.Clone();
        shape[d] = length;
        var inShape = Shape;
        return ViewOfWithGrad(new Layout(shape, Layout.Strides, Layout.Offset + start * Layout.Strides[d]), "narrow", g =>
        {
            var z = Zeros(inShape, g.DType, g.Device);
            using var region = z.Narrow(d, start, length);
            region.CopyFrom(g);
            return z;
        });
    }

    /// <summary>Index <paramref name="index"/> of a dim, removing the dim.</summary>
    public Tensor Select(int dim, int index)
    {
        int d = Shapes.NormalizeDim(dim, Rank, "select");
        if (index < 0) index += Shape[d];
        using var n = Narrow(d, index, 1);
        return n.Squeeze(d);
    }

    /// <summary>Broadcasts size-1 dims (and new leading dims) to <paramref name="shape"/> with stride 0.</summary>
    public Tensor Expand(params int[] shape)
    {
        if (shape.Length < Rank) throw new ShapeException($"expand: cannot expand {Shapes.Format(Shape)} to fewer dims {Shapes.Format(shape)}");
        int lead = shape.Length - Rank;
        var strides = new int[shape.Length];
        var target = (int[])shape.Clone();
        for (int i = 0; i < shape.Length; i++)
        {
            if (i < lead) { strides[i] = 0; continue; }
            int s = Shape[i - lead];
            if (target[i] == -1) target[i] = s;
            if (s == target[i]) strides[i] = Layout.Strides[i - lead];
            else if (s == 1) strides[i] = 0;
            else throw new ShapeException($"expand: cannot expand {Shapes.Format(Shape)} to {Shapes.Format(shape)} (dim {i}: {s} vs {target[i]})");
        }
        if (Shapes.Equal(target, Shape)) return ViewOfWithGrad(Layout, "expand");
        var inShape = Shape;
        return ViewOfWithGrad(new Layout(target, strides, Layout.Offset), "expand", g => Ops.SumTo(g, inShape));
    }

    /// <summary>Removes a size-1 dim (or every size-1 dim when <paramref name="dim"/> is null).</summary>
    public Tensor Squeeze(int? dim = null)
    {
        var shape = new List<int>(); var strides = new List<int>();
        int d = dim is int x ? Shapes.NormalizeDim(x, Rank, "squeeze") : -1;
        for (int i = 0; i < Rank; i++)
        {
            bool drop = Shape[i] == 1 && (d < 0 || d == i);
            if (!drop) { shape.Add(Shape[i]); strides.Add(Layout.Strides[i]); }
        }
        return ViewOfWithGrad(new Layout([.. shape], [.. strides], Layout.Offset), "squeeze");
    }

    /// <summary>Inserts a size-1 dim at <paramref name="dim"/> (negative counts from the end of the new rank).</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = Shapes.NormalizeDim(dim, Rank + 1, "unsqueeze");
        var shape = new List<int>(Shape); var strides = new List<int>(Layout.Strides);
        int stride = d < Rank ? Layout.Strides[d] * Shape[d] : 1;
        shape.Insert(d, 1); strides.Insert(d, stride);
        return ViewOfWithGrad(new Layout([.. shape], [.. strides], Layout.Offset), "unsqueeze");
    }

    /// <summary>Writes <paramref name="src"/>'s values (broadcast to this shape) into this tensor's elements, in place; not tracked by autograd.</summary>
    public void CopyFrom(Tensor src)
    {
        if (src.Device != Device) throw new InvalidOperationException($"copy_from: source on {src.Device}, destination on {Device}");
        using var cast = src.DType == DType ? null : src.To(DType);
        var s = cast ?? src;
        Backend.CopyInto(s.StorageView.BroadcastTo(Shape, "copy_from"), StorageView);
    }

    /// <summary>Sets every element to <paramref name="value"/>, in place; not tracked by autograd.</summary>
    public Tensor Fill(double value) { Backend.Fill(StorageView, value); return this; }
}
