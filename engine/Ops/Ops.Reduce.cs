using MtlMoe.Engine.Amp;
using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.Backends;

namespace MtlMoe.Engine;

public static partial class Ops
{
    private static int[] NormalizeDims(int[]? dims, int rank, string op)
    {
        if (dims is null || dims.Length == 0) { var all = new int[rank]; for (int i = 0; i < rank; i++) all[i] = i; return all; }
        var set = new SortedSet<int>();
        foreach (var d in dims)
            if (!set.Add(Shapes.NormalizeDim(d, rank, op))) throw new ShapeException($"{op}: dim {d} repeated in {Shapes.Format(dims)}");
        return [.. set];
    }

    private static int[] KeptShape(int[] shape, int[] dims)
    {
        var s = (int[])shape.Clone();
        foreach (var d in dims) s[d] = 1;
        return s;
    }

    private static int[] DroppedShape(int[] shape, int[] dims)
    {
        var s = new List<int>();
        for (int i = 0; i < shape.Length; i++) if (Array.IndexOf(dims, i) < 0) s.Add(shape[i]);
        return [.. s];
    }

    private static Tensor ReduceRaw(ReduceOp op, Tensor x, int[] dims, bool keepDim)
    {
        var kept = KeptShape(x.Shape, dims);
        var shape = keepDim ? kept : DroppedShape(x.Shape, dims);
        var s = x.Backend.Reduce(op, x.StorageView, dims);
        // The backend reduces bf16 in float32 and returns float32; outside autocast the op keeps its input's dtype (as
        // PyTorch does), rounding the float32 result once. Under autocast the policy widens the input first instead.
        if (x.DType != DType.BFloat16 || s.DType != DType.Float32) return Tensor.FromStorage(s, shape);
        try { return Tensor.FromStorage(x.Backend.Cast(Backends.StorageView.Dense(s, shape), DType.BFloat16), shape); }
        finally { s.Release(); }
    }

    /// <summary>Sum over <paramref name="dims"/> (all when null).</summary>
    public static Tensor Sum(Tensor x, int[]? dims = null, bool keepDim = false)
    {
        using (var ac = AutocastArgs.For("sum", x))
            if (ac.Changed) return Sum(ac.At(0), dims, keepDim);
        var d = NormalizeDims(dims, x.Rank, "sum");
        var y = ReduceRaw(ReduceOp.Sum, x, d, keepDim);
        var kept = KeptShape(x.Shape, d); var inShape = x.Shape;
        Graph.Record(y, "sum", [x], g =>
        {
            using var gk = g.Reshape(kept);
            using var e = gk.Expand(inShape);
            return [e.Contiguous()];
        });
        return y;
    }

    /// <summary>Mean over <paramref name="dims"/> (all when null).</summary>
    public static Tensor Mean(Tensor x, int[]? dims = null, bool keepDim = false)
    {
        using (var ac = AutocastArgs.For("mean", x))
            if (ac.Changed) return Mean(ac.At(0), dims, keepDim);
        var d = NormalizeDims(dims, x.Rank, "mean");
        long n = 1;
        foreach (var i in d) n *= x.Shape[i];
        if (n == 0) throw new ShapeException($"mean: reducing over an empty dim of {Shapes.Format(x.Shape)}");
        using var s = Sum(x, d, keepDim);
        return MulScalar(s, 1.0 / n);
    }

    /// <summary>Variance over <paramref name="dims"/>; unbiased divides by n − 1.</summary>
    public static Tensor Var(Tensor x, int[]? dims = null, bool keepDim = false, bool unbiased = false)
    {
        using (var ac = AutocastArgs.For("var", x))
            if (ac.Changed) return Var(ac.At(0), dims, keepDim, unbiased);
        var d = NormalizeDims(dims, x.Rank, "var");
        long n = 1;
        foreach (var i in d) n *= x.Shape[i];
        if (n - (unbiased ? 1 : 0) <= 0) throw new ShapeException($"var: not enough elements ({n}) over dims {Shapes.Format(d)} of {Shapes.Format(x.Shape)}");
        using var mean = Mean(x, d, keepDim: true);
        using var c = Sub(x, mean);
        using var c2 = Mul(c, c);
        using var s = Sum(c2, d, keepDim);
        return MulScalar(s, 1.0 / (n - (unbiased ? 1 : 0)));
    }

    /// <summary>Maximum over dims; the gradient is shared equally among tied maxima.</summary>
    public static Tensor Max(Tensor x, int[]? dims = null, bool keepDim = false) => Extreme(ReduceOp.Max, "max", x, dims, keepDim);

    /// <summary>Minimum over dims; the gradient is shared equally among tied minima.</summary>
    public static Tensor Min(Tensor x, int[]? dims = null, bool keepDim = false) => Extreme(ReduceOp.Min, "min", x, dims, keepDim);

    private static Tensor Extreme(ReduceOp op, string name, Tensor x, int[]? dims, bool keepDim)
    {
        var d = NormalizeDims(dims, x.Rank, name);
        var y = ReduceRaw(op, x, d, keepDim);
        var kept = KeptShape(x.Shape, d);
        Graph.Record(y, name, [x], g => [ExtremeGrad(x, y, g, d, kept)]);
        return y;
    }

    // The gradient of max/min: g shared equally among the elements of x equal to the extreme y (same dtypes).
    private static Tensor ExtremeGrad(Tensor x, Tensor y, Tensor g, int[] d, int[] kept)
    {
        using var yk = y.Reshape(kept);
        using var mask = Eq(x, yk);
        using var count = Sum(mask, d, keepDim: true);
        using var gk = g.Reshape(kept);
        using var share = Div(gk, count);
        return Mul(mask, share);
    }

    /// <summary>Index of the maximum along <paramref name="dim"/> (first on ties), Int64.</summary>
    public static Tensor ArgMax(Tensor x, int dim, bool keepDim = false) => ReduceRaw(ReduceOp.ArgMax, x, [Shapes.NormalizeDim(dim, x.Rank, "argmax")], keepDim);

    /// <summary>Index of the minimum along <paramref name="dim"/> (first on ties), Int64.</summary>
    public static Tensor ArgMin(Tensor x, int dim, bool keepDim = false) => ReduceRaw(ReduceOp.ArgMin, x, [Shapes.NormalizeDim(dim, x.Rank, "argmin")], keepDim);
}
