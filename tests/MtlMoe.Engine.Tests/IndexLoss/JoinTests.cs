using MtlMoe.Engine;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.IndexLoss;

public class JoinTests
{
    [Test]
    public void ConcatGrad()
    {
        GradCheck.Assert("concat", x => Ops.Concat([x[0], x[1].T, x[2]], 1), GradCheck.Rand([2, 3], 501), GradCheck.Rand([1, 2], 502), GradCheck.Rand([2, 2], 503));
        GradCheck.Assert("concat dim0", x => Ops.Concat([x[0], x[1]], -2), GradCheck.Rand([2, 3], 504), GradCheck.Rand([1, 3], 505));
        GradCheck.Assert("concat repeated input", x => Ops.Concat([x[0], x[1], x[0]], 0), GradCheck.Rand([2, 3], 510), GradCheck.Rand([1, 3], 511));
    }

    [Test]
    public void StackGrad()
    {
        GradCheck.Assert("stack", x => Ops.Stack([x[0], x[1].T], -1), GradCheck.Rand([2, 3], 506), GradCheck.Rand([3, 2], 507));
        GradCheck.Assert("stack dim0", x => Ops.Stack([x[0], x[1]], 0), GradCheck.Rand([3], 508), GradCheck.Rand([3], 509));
    }

    [Test]
    public void ConcatAndStackForward()
    {
        using var a = Tensor.FromArray(new double[] { 1, 2, 3, 4 }, [2, 2]);
        using var b = Tensor.FromArray(new double[] { 5, 6 }, [2, 1]);
        var c = Ops.Concat([a, b], 1);
        Assert.That(c.Shape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(c.ToDoubleArray(), Is.EqualTo(new double[] { 1, 2, 5, 3, 4, 6 }));
        var s = Ops.Stack([a, a], 1);
        Assert.That(s.Shape, Is.EqualTo(new[] { 2, 2, 2 }));
        Assert.That(s.ToDoubleArray(), Is.EqualTo(new double[] { 1, 2, 1, 2, 3, 4, 3, 4 }));
        using var i = Tensor.FromArray(new long[] { 7 });
        Assert.That(Ops.Concat([i, i], 0).ToArray<long>(), Is.EqualTo(new long[] { 7, 7 }));
    }

    [Test]
    public void ConcatMismatchNamesOpAndShapes()
    {
        using var a = Tensor.Zeros([2, 3]);
        using var b = Tensor.Zeros([3, 3]);
        var e = Assert.Throws<ShapeException>(() => Ops.Concat([a, b], 1));
        Assert.That(e!.Message, Does.Contain("concat").And.Contain("[2, 3]").And.Contain("[3, 3]"));
        using var r = Tensor.Zeros([2]);
        Assert.Throws<ShapeException>(() => Ops.Concat([a, r], 0));
        e = Assert.Throws<ShapeException>(() => Ops.Stack([a, b], 0));
        Assert.That(e!.Message, Does.Contain("stack").And.Contain("[3, 3]"));
    }
}
