using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// Joins tensors along an existing <paramref name="dim"/>; all must share dtype, device, rank and every
    /// other dim. Backward: each input gets its Narrow of the gradient.
    /// </summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int dim)
    {
        if (tensors.Count == 0) throw new ArgumentException("concat: no tensors given");
        using (var ac = Amp.AutocastArgs.For("cat", [.. tensors]))
            if (ac.Changed) return Concat(Enumerable.Range(0, tensors.Count).Select(ac.At).ToArray(), dim);
        var first = tensors[0];
        if (first.Rank == 0) throw new ShapeException($"concat: zero-dim tensors cannot be concatenated ({ShapeList(tensors)})");
        int d = Shapes.NormalizeDim(dim, first.Rank, "concat");
        int total = 0;
        var starts = new int[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            SameDevice("concat", first, t); SameDType("concat", first, t);
            bool ok = t.Rank == first.Rank;
            for (int j = 0; ok && j < t.Rank; j++) ok = j == d || t.Shape[j] == first.Shape[j];
            if (!ok) throw new ShapeException($"concat: tensor {i} has shape {Shapes.Format(t.Shape)}, which does not match {Shapes.Format(first.Shape)} outside dim {d} ({ShapeList(tensors)})");
            starts[i] = total;
            total += t.Shape[d];
        }
        var outShape = (int[])first.Shape.Clone();
        outShape[d] = total;
        var y = Tensor.Zeros(outShape, first.DType, first.Device);
        using (GradMode.NoGrad())
        {
            for (int i = 0; i < tensors.Count; i++)
            {
                var t = tensors[i];
                using var region = y.Narrow(d, starts[i], t.Shape[d]);
                y.Backend.CopyInto(t.StorageView, region.StorageView);
            }
        }
        var lengths = tensors.Select(t => t.Shape[d]).ToArray();
        Graph.Record(y, "concat", [.. tensors], g =>
        {
            var grads = new Tensor?[lengths.Length];
            for (int i = 0; i < lengths.Length; i++)
                if (tensors[i].RequiresGrad) grads[i] = g.Narrow(d, starts[i], lengths[i]);
            return grads;
        });
        return y;
    }

    /// <summary>Joins same-shape tensors along a new dim <paramref name="dim"/> (negative counts from the end of the new rank).</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim)
    {
        if (tensors.Count == 0) throw new ArgumentException("stack: no tensors given");
        var first = tensors[0];
        int d = Shapes.NormalizeDim(dim, first.Rank + 1, "stack");
        for (int i = 1; i < tensors.Count; i++)
            if (!Shapes.Equal(tensors[i].Shape, first.Shape))
                throw new ShapeException($"stack: tensor {i} has shape {Shapes.Format(tensors[i].Shape)}, not {Shapes.Format(first.Shape)} ({ShapeList(tensors)})");
        var parts = new Tensor[tensors.Count];
        try
        {
            for (int i = 0; i < parts.Length; i++) parts[i] = tensors[i].Unsqueeze(d);
            return Concat(parts, d);
        }
        finally { foreach (var p in parts) p?.Dispose(); }
    }

    /// <summary>
    /// One-hot encoding: labels (Int64/Int32, any shape) → [..., <paramref name="numClasses"/>] in
    /// <paramref name="dtype"/>, 1 at each label's position. Labels must lie in [0, numClasses).
    /// </summary>
    public static Tensor OneHot(Tensor labels, int numClasses, DType dtype = DType.Float32)
    {
        if (numClasses <= 0) throw new ArgumentException($"one_hot: numClasses must be positive, got {numClasses} (labels {Shapes.Format(labels.Shape)})");
        CheckIndex("one_hot", labels, labels, numClasses, $"{numClasses} classes", "label");
        using var l = labels.To(dtype);
        using var lu = l.Unsqueeze(-1);
        using var classes = Tensor.Arange(numClasses, dtype, labels.Device);
        return Eq(lu, classes);
    }

    private static string ShapeList(IReadOnlyList<Tensor> tensors) => string.Join(", ", tensors.Select(t => Shapes.Format(t.Shape)));
}
