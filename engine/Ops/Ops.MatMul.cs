using MtlMoe.Engine.Amp;
using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// Matrix product with NumPy semantics: [..., m, k] · [..., k, n] with broadcast batch dims;
    /// a 1-d left operand is a row vector and a 1-d right operand a column vector (the added dim is removed).
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        using (var ac = AutocastArgs.For("matmul", a, b))
            if (ac.Changed) return MatMul(ac.At(0), ac.At(1));
        SameDevice("matmul", a, b); SameDType("matmul", a, b);
        if (a.Rank == 0 || b.Rank == 0) throw new ShapeException($"matmul: operands must have at least one dim, got {Shapes.Format(a.Shape)} and {Shapes.Format(b.Shape)}");
        if (a.Rank == 1) { using var a2 = a.Unsqueeze(0); using var r = MatMul(a2, b); return r.Squeeze(-2); }
        if (b.Rank == 1) { using var b2 = b.Unsqueeze(1); using var r = MatMul(a, b2); return r.Squeeze(-1); }
        int m = a.Shape[^2], k = a.Shape[^1], k2 = b.Shape[^2], n = b.Shape[^1];
        if (k != k2) throw new ShapeException($"matmul: shapes {Shapes.Format(a.Shape)} and {Shapes.Format(b.Shape)} do not chain (inner dims {k} vs {k2})");
        var batch = Shapes.Broadcast(a.Shape[..^2], b.Shape[..^2], "matmul");
        int[] sa = [.. batch, m, k], sb = [.. batch, k, n], so = [.. batch, m, n];
        var la = a.Layout.BroadcastTo(sa, "matmul"); var lb = b.Layout.BroadcastTo(sb, "matmul");
        var y = Tensor.FromStorage(a.Backend.MatMul(new(a.Storage, la), new(b.Storage, lb)), so);
        var aShape = a.Shape; var bShape = b.Shape;
        Graph.Record(y, "matmul", [a, b], g =>
        {
            Tensor? da = null, db = null;
            if (a.RequiresGrad) { using var bt = b.Transpose(-1, -2); var full = MatMul(g, bt); da = SumTo(full, aShape); }
            if (b.RequiresGrad) { using var at = a.Transpose(-1, -2); var full = MatMul(at, g); db = SumTo(full, bShape); }
            return [da, db];
        });
        return y;
    }

    /// <summary>y = x·Wᵀ + b with x: [..., in], weight: [out, in], bias: [out].</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        using (var ac = AutocastArgs.For("linear", x, weight, bias))
            if (ac.Changed) return Linear(ac.At(0), ac.At(1), ac[2]);
        if (weight.Rank != 2) throw new ShapeException($"linear: weight must be [out, in], got {Shapes.Format(weight.Shape)}");
        if (x.Rank == 0 || x.Shape[^1] != weight.Shape[1])
            throw new ShapeException($"linear: input {Shapes.Format(x.Shape)} does not match weight {Shapes.Format(weight.Shape)} (in features {weight.Shape[1]})");
        if (bias is not null && (bias.Rank != 1 || bias.Shape[0] != weight.Shape[0]))
            throw new ShapeException($"linear: bias {Shapes.Format(bias.Shape)} does not match weight {Shapes.Format(weight.Shape)}");
        using var wt = weight.Transpose(0, 1);
        if (bias is null) return MatMul(x, wt);
        using var xw = MatMul(x, wt);
        return Add(xw, bias);
    }
}
