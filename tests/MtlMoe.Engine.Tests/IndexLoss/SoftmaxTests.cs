using MtlMoe.Engine;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.IndexLoss;

public class SoftmaxTests
{
    [TestCase(0)]
    [TestCase(1)]
    [TestCase(-1)]
    public void SoftmaxGradNonContiguous(int dim) =>
        GradCheck.Assert("softmax", x => Ops.Softmax(x[0].Permute(2, 0, 1), dim), GradCheck.Rand([3, 4, 5], 101, -2, 2));

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(-1)]
    public void LogSoftmaxGradNonContiguous(int dim) =>
        GradCheck.Assert("log_softmax", x => Ops.LogSoftmax(x[0].Permute(2, 0, 1), dim), GradCheck.Rand([3, 4, 5], 102, -2, 2));

    [Test]
    public void LogSumExpGrad()
    {
        GradCheck.Assert("logsumexp", x => Ops.LogSumExp(x[0].T, 0), GradCheck.Rand([4, 3], 103, -3, 3));
        GradCheck.Assert("logsumexp keepdim", x => Ops.LogSumExp(x[0], -1, keepDim: true), GradCheck.Rand([2, 3, 4], 104, -3, 3));
    }

    [TestCase(DType.Float32)]
    [TestCase(DType.Float64)]
    public void SoftmaxRowsSumToOneAndStayStableAtThousand(DType dtype)
    {
        using var x0 = Tensor.FromArray(new double[] { 1000, -1000, 0, -1000, -1000, -1000, 0.5, 1.5, -2 }, [3, 3]);
        using var x = x0.To(dtype);
        using var y = Ops.Softmax(x, 1);
        var v = y.ToDoubleArray();
        Assert.That(v, Is.All.Not.NaN);
        for (int r = 0; r < 3; r++) Assert.That(v[3 * r] + v[3 * r + 1] + v[3 * r + 2], Is.EqualTo(1).Within(1e-6));
        Assert.That(v[0], Is.EqualTo(1).Within(1e-12));
        Assert.That(v[1], Is.EqualTo(0).Within(1e-12));
        Assert.That(v[3], Is.EqualTo(1.0 / 3).Within(1e-6));
        double z = Math.Exp(0.5) + Math.Exp(1.5) + Math.Exp(-2);
        Assert.That(v[7], Is.EqualTo(Math.Exp(1.5) / z).Within(1e-6));

        using var ls = Ops.LogSoftmax(x, 1);
        var l = ls.ToDoubleArray();
        Assert.That(l[0], Is.EqualTo(0).Within(1e-6));
        Assert.That(l[1], Is.EqualTo(-2000).Within(1e-3));
        Assert.That(l[2], Is.EqualTo(-1000).Within(1e-3));
        Assert.That(l[4], Is.EqualTo(-Math.Log(3)).Within(1e-5));
    }

    [Test]
    public void SoftmaxOnDimZeroMatchesTransposedRows()
    {
        using var x = GradCheck.Rand([4, 3], 105, -3, 3);
        using var a = Ops.Softmax(x, 0);
        using var xt = x.T;
        using var b = Ops.Softmax(xt, 1);
        using var bt = b.T;
        Assert.That(a.ToDoubleArray(), Is.EqualTo(bt.ToDoubleArray()).Within(1e-15));
    }

    [Test]
    public void LogSumExpMatchesHandValueAndIsStable()
    {
        using var x = Tensor.FromArray(new double[] { 1, 2, 3, 1000, 1000, -1000 }, [2, 3]);
        var v = Ops.LogSumExp(x, 1).ToDoubleArray();
        Assert.That(v[0], Is.EqualTo(Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3))).Within(1e-12));
        Assert.That(v[1], Is.EqualTo(1000 + Math.Log(2)).Within(1e-9));
        using var ninf = Tensor.Full([1, 2], double.NegativeInfinity, DType.Float64);
        Assert.That(Ops.LogSumExp(ninf, 1).Item(), Is.EqualTo(double.NegativeInfinity));
    }

    [Test]
    public void SoftmaxBadDimNamesOp()
    {
        using var x = Tensor.Zeros([2, 3]);
        var e = Assert.Throws<ShapeException>(() => Ops.Softmax(x, 2));
        Assert.That(e!.Message, Does.Contain("softmax").And.Contain("rank 2"));
    }
}
