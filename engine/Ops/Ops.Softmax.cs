using MtlMoe.Engine.Amp;
using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// softmax along <paramref name="dim"/> (negative counts from the end), computed stably (each
    /// row's maximum is subtracted first). Backward: y·(g − Σ g·y).
    /// </summary>
    public static Tensor Softmax(Tensor x, int dim)
    {
        using (var ac = AutocastArgs.For("softmax", x))
            if (ac.Changed) return Softmax(ac.At(0), dim);
        RequireFloat("softmax", x);
        int d = Shapes.NormalizeDim(dim, x.Rank, "softmax");
        var y = Tensor.FromStorage(x.Backend.Softmax(x.StorageView, d, log: false), x.Shape);
        Graph.Record(y, "softmax", [x], g =>
        {
            using var gy = Mul(g, y);
            using var s = Sum(gy, [d], keepDim: true);
            using var c = Sub(g, s);
            return [Mul(y, c)];
        });
        return y;
    }

    /// <summary>
    /// log-softmax along <paramref name="dim"/>: x − logΣexp(x), computed stably. Backward: g − softmax·Σg.
    /// </summary>
    public static Tensor LogSoftmax(Tensor x, int dim)
    {
        using (var ac = AutocastArgs.For("log_softmax", x))
            if (ac.Changed) return LogSoftmax(ac.At(0), dim);
        RequireFloat("log_softmax", x);
        int d = Shapes.NormalizeDim(dim, x.Rank, "log_softmax");
        var y = Tensor.FromStorage(x.Backend.Softmax(x.StorageView, d, log: true), x.Shape);
        Graph.Record(y, "log_softmax", [x], g =>
        {
            using var p = Exp(y);
            using var s = Sum(g, [d], keepDim: true);
            using var ps = Mul(p, s);
            return [Sub(g, ps)];
        });
        return y;
    }

    /// <summary>
    /// log Σ exp(x) over <paramref name="dim"/>, stable: m + log Σ exp(x − m) with m the row maximum
    /// (held constant for the gradient, which is then exactly softmax(x)·g).
    /// </summary>
    public static Tensor LogSumExp(Tensor x, int dim, bool keepDim = false)
    {
        RequireFloat("logsumexp", x);
        int d = Shapes.NormalizeDim(dim, x.Rank, "logsumexp");
        Tensor m;
        using (GradMode.NoGrad())
        {
            using var raw = Max(x, [d], keepDim: true);
            // A row of −∞ (or +∞) would give ∞ − ∞ = NaN; shift such rows by 0 instead.
            using var finite = IsFiniteMask(raw);
            using var zero = raw.ZerosLike();
            m = Where(finite, raw, zero);
        }
        using (m)
        {
            using var c = Sub(x, m);
            using var e = Exp(c);
            using var s = Sum(e, [d], keepDim: true);
            using var l = Log(s);
            var r = Add(l, m);
            if (keepDim) return r;
            using (r) return r.Squeeze(d);
        }
    }

    // 1 where |v| < ∞ (NaN gives 0 too), in v's dtype; no gradient.
    private static Tensor IsFiniteMask(Tensor v)
    {
        using var a = Abs(v);
        return LtScalar(a, double.PositiveInfinity);
    }
}
