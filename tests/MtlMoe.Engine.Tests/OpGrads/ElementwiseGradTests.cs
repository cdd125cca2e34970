using MtlMoe.Engine;
using MtlMoe.Tests.Support;
using static MtlMoe.Tests.Support.GradCheck;

namespace MtlMoe.Tests.OpGrads;

public class ElementwiseGradTests
{
    private static readonly int[] S = [3, 4];

    [Test] public void Add() => GradCheck.Assert("add", x => Ops.Add(x[0], x[1]), Rand(S, 1), Rand(S, 2));
    [Test] public void AddBroadcast() => GradCheck.Assert("add broadcast", x => Ops.Add(x[0], x[1]), Rand([2, 1, 4], 1), Rand([3, 1], 2));
    [Test] public void Sub() => GradCheck.Assert("sub", x => Ops.Sub(x[0], x[1]), Rand([2, 3], 3), Rand([3], 4));
    [Test] public void Mul() => GradCheck.Assert("mul", x => Ops.Mul(x[0], x[1]), Rand(S, 5), Rand([1, 4], 6));
    [Test] public void MulNonContiguous() => GradCheck.Assert("mul transposed", x => Ops.Mul(x[0].T, x[1]), Rand([4, 3], 5), Rand([3, 4], 6));
    [Test] public void Div() => GradCheck.Assert("div", x => Ops.Div(x[0], x[1]), Rand(S, 7), Rand(S, 8, 0.5, 2));
    [Test] public void Neg() => GradCheck.Assert("neg", x => Ops.Neg(x[0]), Rand(S, 9));
    [Test] public void PowScalar() => GradCheck.Assert("pow", x => Ops.Pow(x[0], 2.5), Rand(S, 10, 0.5, 2));
    [Test] public void PowTensor() => GradCheck.Assert("pow tensor", x => Ops.Pow(x[0], x[1]), Rand(S, 11, 0.5, 2), Rand([4], 12));
    [Test] public void Exp() => GradCheck.Assert("exp", x => Ops.Exp(x[0]), Rand(S, 13));
    [Test] public void Log() => GradCheck.Assert("log", x => Ops.Log(x[0]), Rand(S, 14, 0.2, 3));
    [Test] public void Sqrt() => GradCheck.Assert("sqrt", x => Ops.Sqrt(x[0]), Rand(S, 15, 0.2, 3));
    [Test] public void Abs() => GradCheck.Assert("abs", x => Ops.Abs(x[0]), Rand(S, 16));
    [Test] public void Clamp() => GradCheck.Assert("clamp", x => Ops.Clamp(x[0], -0.5, 0.5), Rand(S, 17));
    [Test] public void Relu() => GradCheck.Assert("relu", x => Ops.Relu(x[0]), Rand(S, 18));
    [Test] public void Sigmoid() => GradCheck.Assert("sigmoid", x => Ops.Sigmoid(x[0]), Rand(S, 19, -4, 4));
    [Test] public void Tanh() => GradCheck.Assert("tanh", x => Ops.Tanh(x[0]), Rand(S, 20, -3, 3));
    [Test] public void Softplus() => GradCheck.Assert("softplus", x => Ops.Softplus(x[0]), Rand(S, 21, -5, 5));
    [Test] public void Erf() => GradCheck.Assert("erf", x => Ops.Erf(x[0]), Rand(S, 22, -3, 3));
    [Test] public void NormCdf() => GradCheck.Assert("normal_cdf", x => Ops.NormCdf(x[0]), Rand(S, 23, -4, 4));
    [Test] public void Maximum() => GradCheck.Assert("maximum", x => Ops.Maximum(x[0], x[1]), Rand(S, 24), Rand(S, 25));
    [Test] public void Minimum() => GradCheck.Assert("minimum", x => Ops.Minimum(x[0], x[1]), Rand(S, 26), Rand([4], 27));
    [Test] public void RDivScalar() => GradCheck.Assert("rdiv", x => Ops.RDivScalar(x[0], 3), Rand(S, 28, 0.5, 2));
    [Test] public void Where() => GradCheck.Assert("where", x => { using var c = Ops.GtScalar(x[0], 0); return Ops.Where(c, x[0], x[1]); }, Rand(S, 29), Rand([4], 30));
    [Test] public void Sum() => GradCheck.Assert("sum", x => Ops.Sum(x[0], [0, 2], keepDim: false), Rand([2, 3, 4], 31));
    [Test] public void Mean() => GradCheck.Assert("mean", x => Ops.Mean(x[0], [-1], keepDim: true), Rand([2, 3, 4], 32));
    [Test] public void Var() => GradCheck.Assert("var", x => Ops.Var(x[0], [1], unbiased: true), Rand([2, 5, 3], 33));
    [Test] public void Max() => GradCheck.Assert("max", x => Ops.Max(x[0], [1]), Rand([3, 5], 34));
    [Test] public void Min() => GradCheck.Assert("min", x => Ops.Min(x[0], [0], keepDim: true), Rand([3, 5], 35));
    [Test] public void MatMul() => GradCheck.Assert("matmul", x => Ops.MatMul(x[0], x[1]), Rand([3, 4], 36), Rand([4, 5], 37));
    [Test] public void MatMulBatchedBroadcast() => GradCheck.Assert("matmul batched", x => Ops.MatMul(x[0], x[1].T), Rand([2, 1, 3, 4], 38), Rand([3, 5, 4], 39));
    [Test] public void MatMulVector() => GradCheck.Assert("matmul vector", x => Ops.MatMul(x[0], x[1]), Rand([4], 40), Rand([4, 3], 41));
    [Test] public void Linear() => GradCheck.Assert("linear", x => Ops.Linear(x[0], x[1], x[2]), Rand([5, 4], 42), Rand([3, 4], 43), Rand([3], 44));
    [Test] public void Views() => GradCheck.Assert("views", x =>
    {
        using var p = x[0].Permute(2, 0, 1);
        using var n = p.Narrow(1, 1, 2);
        using var r = n.Reshape(4, -1);
        using var u = x[1].Unsqueeze(0);
        using var e = u.Expand(4, 6);
        return Ops.Mul(r, e);
    }, Rand([3, 3, 4], 45), Rand([6], 46));
    [Test] public void AddScalar() => GradCheck.Assert("add_scalar", x => Ops.AddScalar(x[0], 2.5), Rand(S, 48));
    [Test] public void MulScalar() => GradCheck.Assert("mul_scalar", x => Ops.MulScalar(x[0].T, -1.5), Rand(S, 49));
    [Test] public void RSubScalar() => GradCheck.Assert("rsub_scalar", x => Ops.RSubScalar(x[0], 3), Rand(S, 50));
    [Test] public void ContiguousCopyOfTransposed() => GradCheck.Assert("contiguous", x => { using var t = x[0].T; return t.Contiguous(); }, Rand(S, 51));
    [Test] public void SqueezeUnsqueezeFlatten() => GradCheck.Assert("squeeze/unsqueeze/flatten", x =>
    {
        using var u = x[0].Unsqueeze(1);
        using var f = u.Flatten(1);
        using var e = f.Unsqueeze(-1);
        return e.Squeeze();
    }, Rand([3, 2, 2], 52));
    [Test] public void Select() => GradCheck.Assert("select", x => x[0].Select(1, 2), Rand([3, 4], 47));
}
