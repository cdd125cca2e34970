using MtlMoe.Engine.Amp;
using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.Backends;

namespace MtlMoe.Engine;

/// <summary>
/// The engine's ops with their gradients. Each op computes through the tensor's backend and records
/// a backward written in other ops, so every backend gets gradients for free. One file per family.
/// </summary>
public static partial class Ops
{
    internal static void SameDevice(string op, Tensor a, Tensor b)
    {
        if (a.Device != b.Device) throw new InvalidOperationException($"{op}: tensors on different devices ({a.Device} and {b.Device}); move one with To(device)");
    }

    internal static void SameDType(string op, Tensor a, Tensor b)
    {
        if (a.DType != b.DType) throw new InvalidOperationException($"{op}: dtypes differ ({a.DType.Name()} {Shapes.Format(a.Shape)} and {b.DType.Name()} {Shapes.Format(b.Shape)}); cast one with To(DType)");
    }

    /// <summary>Sums a gradient over broadcast dims so it has <paramref name="shape"/> again.</summary>
    public static Tensor SumTo(Tensor g, int[] shape)
    {
        if (Shapes.Equal(g.Shape, shape)) return g;
        int lead = g.Rank - shape.Length;
        if (lead < 0) throw new ShapeException($"sum_to: cannot reduce {Shapes.Format(g.Shape)} to {Shapes.Format(shape)}");
        var dims = new List<int>();
        for (int i = 0; i < g.Rank; i++)
            if (i < lead || (shape[i - lead] == 1 && g.Shape[i] != 1)) dims.Add(i);
        using var s = Sum(g, [.. dims], keepDim: true);
        return s.Reshape(shape);
    }

    private static Tensor UnaryRaw(Tensor x, UnaryOp op, double a = 0, double b = 0)
        => Tensor.FromStorage(x.Backend.Unary(op, x.StorageView, a, b), x.Shape);

    private static Tensor Unary(string name, Tensor x, UnaryOp op, Func<Tensor, Tensor, Tensor> backward, double a = 0, double b = 0)
    {
        var y = UnaryRaw(x, op, a, b);
        Graph.Record(y, name, [x], g => [backward(g, y)]);
        return y;
    }

    private static void RequireFloat(string op, Tensor x)
    {
        if (!x.DType.IsFloat()) throw new NotSupportedException($"{op}: needs a float tensor, got {x.DType.Name()} {Shapes.Format(x.Shape)}");
    }

    /// <summary>−x</summary>
    public static Tensor Neg(Tensor x) => Unary("neg", x, UnaryOp.Neg, (g, _) => Neg(g));
    /// <summary>|x|; gradient sign(x) (0 at 0).</summary>
    public static Tensor Abs(Tensor x) => Unary("abs", x, UnaryOp.Abs, (g, _) => { using var s = UnaryRaw(x, UnaryOp.Sign); return Mul(g, s); });
    /// <summary>sign(x) ∈ {−1, 0, 1}; no gradient.</summary>
    public static Tensor Sign(Tensor x) => UnaryRaw(x, UnaryOp.Sign);
    /// <summary>eˣ</summary>
    public static Tensor Exp(Tensor x) { using (var ac = AutocastArgs.For("exp", x)) if (ac.Changed) return Exp(ac.At(0)); RequireFloat("exp", x); return Unary("exp", x, UnaryOp.Exp, (g, y) => Mul(g, y)); }
    /// <summary>ln x</summary>
    public static Tensor Log(Tensor x) { using (var ac = AutocastArgs.For("log", x)) if (ac.Changed) return Log(ac.At(0)); RequireFloat("log", x); return Unary("log", x, UnaryOp.Log, (g, _) => Div(g, x)); }
    /// <summary>√x</summary>
    public static Tensor Sqrt(Tensor x) { RequireFloat("sqrt", x); return Unary("sqrt", x, UnaryOp.Sqrt, (g, y) => { using var d = MulScalar(y, 2); return Div(g, d); }); }
    /// <summary>max(x, 0)</summary>
    public static Tensor Relu(Tensor x) => Unary("relu", x, UnaryOp.Relu, (g, y) => Tensor.FromStorage(g.Backend.ReluBackward(g.StorageView, y.StorageView), y.Shape));
    /// <summary>1 / (1 + e⁻ˣ)</summary>
    public static Tensor Sigmoid(Tensor x) { RequireFloat("sigmoid", x); return Unary("sigmoid", x, UnaryOp.Sigmoid, (g, y) => { using var one = RSubScalar(y, 1); using var d = Mul(y, one); return Mul(g, d); }); }
    /// <summary>tanh x</summary>
    public static Tensor Tanh(Tensor x) { RequireFloat("tanh", x); return Unary("tanh", x, UnaryOp.Tanh, (g, y) => { using var y2 = Mul(y, y); using var d = RSubScalar(y2, 1); return Mul(g, d); }); }
    /// <summary>ln(1 + eˣ), computed stably; gradient sigmoid(x).</summary>
    public static Tensor Softplus(Tensor x) { using (var ac = AutocastArgs.For("softplus", x)) if (ac.Changed) return Softplus(ac.At(0)); RequireFloat("softplus", x); return Unary("softplus", x, UnaryOp.Softplus, (g, _) => { using var s = Sigmoid(x); return Mul(g, s); }); }
    /// <summary>Error function; gradient 2/√π·e^(−x²).</summary>
    public static Tensor Erf(Tensor x)
    {
        using (var ac = AutocastArgs.For("erf", x)) if (ac.Changed) return Erf(ac.At(0));
        RequireFloat("erf", x);
        return Unary("erf", x, UnaryOp.Erf, (g, _) =>
        {
            using var x2 = Mul(x, x); using var nx2 = Neg(x2); using var e = Exp(nx2); using var d = MulScalar(e, 2 / Math.Sqrt(Math.PI));
            return Mul(g, d);
        });
    }
    /// <summary>Standard normal CDF Φ(x); gradient φ(x) = e^(−x²/2)/√(2π).</summary>
    public static Tensor NormCdf(Tensor x)
    {
        using (var ac = AutocastArgs.For("norm_cdf", x)) if (ac.Changed) return NormCdf(ac.At(0));
        RequireFloat("normal_cdf", x);
        return Unary("normal_cdf", x, UnaryOp.NormCdf, (g, _) =>
        {
            using var x2 = Mul(x, x); using var h = MulScalar(x2, -0.5); using var e = Exp(h); using var d = MulScalar(e, 1 / Math.Sqrt(2 * Math.PI));
            return Mul(g, d);
        });
    }
    /// <summary>x + s</summary>
    public static Tensor AddScalar(Tensor x, double s) => Unary("add_scalar", x, UnaryOp.AddScalar, (g, _) => g, s);
    /// <summary>x · s</summary>
    public static Tensor MulScalar(Tensor x, double s) => Unary("mul_scalar", x, UnaryOp.MulScalar, (g, _) => MulScalar(g, s), s);
    /// <summary>s − x</summary>
    public static Tensor RSubScalar(Tensor x, double s) { using var n = Neg(x); return AddScalar(n, s); }
    /// <summary>s / x</summary>
    public static Tensor RDivScalar(Tensor x, double s)
    {
        RequireFloat("rdiv_scalar", x);
        return Unary("rdiv_scalar", x, UnaryOp.RDivScalar, (g, y) => { using var y2 = Mul(y, y); using var d = MulScalar(y2, -1 / s); return Mul(g, d); }, s);
    }
    /// <summary>xᵖ</summary>
    public static Tensor Pow(Tensor x, double p)
    {
        using (var ac = AutocastArgs.For("pow", x)) if (ac.Changed) return Pow(ac.At(0), p);
        RequireFloat("pow", x);
        return Unary("pow", x, UnaryOp.PowScalar, (g, _) => { using var xp = UnaryRaw(x, UnaryOp.PowScalar, p - 1); using var d = MulScalar(xp, p); return Mul(g, d); }, p);
    }
    /// <summary>min(max(x, lo), hi); gradient 1 inside [lo, hi], 0 outside.</summary>
    public static Tensor Clamp(Tensor x, double lo = double.NegativeInfinity, double hi = double.PositiveInfinity)
    {
        if (lo > hi) throw new ArgumentException($"clamp: min {lo} > max {hi}");
        return Unary("clamp", x, UnaryOp.Clamp, (g, _) => { using var m = UnaryRaw(x, UnaryOp.InRange, lo, hi); return Mul(g, m); }, lo, hi);
    }

    /// <summary>1 where x &gt; s else 0 (no gradient).</summary>
    public static Tensor GtScalar(Tensor x, double s) => UnaryRaw(x, UnaryOp.GtScalar, s);
    /// <summary>1 where x &lt; s else 0 (no gradient).</summary>
    public static Tensor LtScalar(Tensor x, double s) => UnaryRaw(x, UnaryOp.LtScalar, s);
    /// <summary>1 where x == s else 0 (no gradient).</summary>
    public static Tensor EqScalar(Tensor x, double s) => UnaryRaw(x, UnaryOp.EqScalar, s);

    // ---------------- binary with broadcasting ----------------

    private static Tensor BinaryRaw(string name, BinaryOp op, Tensor a, Tensor b)
    {
        SameDevice(name, a, b); SameDType(name, a, b);
        var shape = Shapes.Broadcast(a.Shape, b.Shape, name);
        return Tensor.FromStorage(a.Backend.Binary(op, a.StorageView.BroadcastTo(shape, name), b.StorageView.BroadcastTo(shape, name)), shape);
    }

    private static Tensor Binary(string name, BinaryOp op, Tensor a, Tensor b, Func<Tensor, Tensor?> ga, Func<Tensor, Tensor?> gb)
    {
        var y = BinaryRaw(name, op, a, b);
        var sa = a.Shape; var sb = b.Shape;
        Graph.Record(y, name, [a, b], g =>
        {
            Tensor? da = a.RequiresGrad ? ga(g) : null, db = b.RequiresGrad ? gb(g) : null;
            return [da is null ? null : SumTo(da, sa), db is null ? null : SumTo(db, sb)];
        });
        return y;
    }

    // Under autocast a mixed bf16/float32 pair is promoted to float32 and the op runs again on it (its backward then
    // sees the promoted operands); null when nothing changes.
    private static Tensor? Promoted(string name, Tensor a, Tensor b, Func<Tensor, Tensor, Tensor> op)
    {
        if (!Autocast.IsEnabled) return null;
        using var ac = AutocastArgs.For(name, a, b);
        return ac.Changed ? op(ac.At(0), ac.At(1)) : null;
    }

    /// <summary>a + b (broadcasting)</summary>
    public static Tensor Add(Tensor a, Tensor b) => Promoted("add", a, b, Add) ?? Binary("add", BinaryOp.Add, a, b, g => g, g => g);
    /// <summary>a − b (broadcasting)</summary>
    public static Tensor Sub(Tensor a, Tensor b) => Promoted("sub", a, b, Sub) ?? Binary("sub", BinaryOp.Sub, a, b, g => g, g => Neg(g));
    /// <summary>a · b (broadcasting)</summary>
    public static Tensor Mul(Tensor a, Tensor b) => Promoted("mul", a, b, Mul) ?? Binary("mul", BinaryOp.Mul, a, b, g => Mul(g, b), g => Mul(g, a));
    /// <summary>a / b (broadcasting)</summary>
    public static Tensor Div(Tensor a, Tensor b) => Promoted("div", a, b, Div) ?? Binary("div", BinaryOp.Div, a, b,
        g => Div(g, b),
        g => { using var q = Div(a, b); using var qb = Div(q, b); using var n = Neg(qb); return Mul(g, n); });
    /// <summary>aᵇ element-wise (a &gt; 0 for b's gradient).</summary>
    public static Tensor Pow(Tensor a, Tensor b) => Promoted("pow", a, b, Pow) ?? Binary("pow", BinaryOp.Pow, a, b,
        g => { using var bm1 = AddScalar(b, -1); using var p = PowRaw(a, bm1); using var d = Mul(b, p); return Mul(g, d); },
        g => { using var p = PowRaw(a, b); using var la = Log(a); using var d = Mul(p, la); return Mul(g, d); });
    private static Tensor PowRaw(Tensor a, Tensor b) => BinaryRaw("pow", BinaryOp.Pow, a, b);
    /// <summary>Element-wise maximum; ties send the gradient to a.</summary>
    public static Tensor Maximum(Tensor a, Tensor b) => Promoted("maximum", a, b, Maximum) ?? Binary("maximum", BinaryOp.Maximum, a, b,
        g => { using var m = BinaryRaw("maximum", BinaryOp.Ge, a, b); return Mul(g, m); },
        g => { using var m = BinaryRaw("maximum", BinaryOp.Lt, a, b); return Mul(g, m); });
    /// <summary>Element-wise minimum; ties send the gradient to a.</summary>
    public static Tensor Minimum(Tensor a, Tensor b) => Promoted("minimum", a, b, Minimum) ?? Binary("minimum", BinaryOp.Minimum, a, b,
        g => { using var m = BinaryRaw("minimum", BinaryOp.Le, a, b); return Mul(g, m); },
        g => { using var m = BinaryRaw("minimum", BinaryOp.Gt, a, b); return Mul(g, m); });

    /// <summary>1 where a &gt; b (broadcasting, no gradient).</summary>
    public static Tensor Gt(Tensor a, Tensor b) => BinaryRaw("gt", BinaryOp.Gt, a, b);
    /// <summary>1 where a &lt; b.</summary>
    public static Tensor Lt(Tensor a, Tensor b) => BinaryRaw("lt", BinaryOp.Lt, a, b);
    /// <summary>1 where a ≥ b.</summary>
    public static Tensor Ge(Tensor a, Tensor b) => BinaryRaw("ge", BinaryOp.Ge, a, b);
    /// <summary>1 where a ≤ b.</summary>
    public static Tensor Le(Tensor a, Tensor b) => BinaryRaw("le", BinaryOp.Le, a, b);
    /// <summary>1 where a == b.</summary>
    public static Tensor Eq(Tensor a, Tensor b) => BinaryRaw("eq", BinaryOp.Eq, a, b);
    /// <summary>1 where a ≠ b.</summary>
    public static Tensor Ne(Tensor a, Tensor b) => BinaryRaw("ne", BinaryOp.Ne, a, b);

    /// <summary>cond ? a : b with broadcasting; cond is any dtype, non-zero meaning true; no gradient to cond.</summary>
    public static Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        using (var ac = AutocastArgs.For("where", a, b))
            if (ac.Changed) return Where(cond, ac.At(0), ac.At(1));
        SameDevice("where", a, b); SameDevice("where", cond, a); SameDType("where", a, b);
        var shape = Shapes.Broadcast(Shapes.Broadcast(a.Shape, b.Shape, "where"), cond.Shape, "where");
        var y = WhereRaw(cond, a, b, shape);
        var sa = a.Shape; var sb = b.Shape;
        Graph.Record(y, "where", [a, b], g =>
        {
            using var zero = Tensor.Zeros([], g.DType, g.Device);
            Tensor? da = null, db = null;
            if (a.RequiresGrad) da = SumTo(WhereRaw(cond, g, zero, shape), sa);
            if (b.RequiresGrad) db = SumTo(WhereRaw(cond, zero, g, shape), sb);
            return [da, db];
        }, saved: [cond]);
        return y;
    }

    private static Tensor WhereRaw(Tensor cond, Tensor a, Tensor b, int[] shape)
        => Tensor.FromStorage(a.Backend.Where(cond.StorageView.BroadcastTo(shape, "where"),
            a.StorageView.BroadcastTo(shape, "where"), b.StorageView.BroadcastTo(shape, "where")), shape);
}
