using MtlMoe.Engine;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.IndexLoss;

public class LossTests
{
    private static Tensor Labels(params long[] v) => Tensor.FromArray(v);

    [TestCase("mean", 0.0)]
    [TestCase("sum", 0.0)]
    [TestCase("mean", 0.1)]
    [TestCase("sum", 0.2)]
    [TestCase("none", 0.1)]
    public void CrossEntropyGrad(string reduction, double smoothing)
    {
        using var labels = Labels(2, 0, 4, 1);
        GradCheck.Assert("cross_entropy", x => Ops.CrossEntropy(x[0].T, labels, reduction, smoothing), GradCheck.Rand([5, 4], 201, -2, 2));
    }

    [Test]
    public void NllLossGrad()
    {
        using var labels = Tensor.FromArray(new[] { 1, 0, 2 }); // int32 labels
        GradCheck.Assert("nll_loss", x => Ops.NllLoss(x[0], labels), GradCheck.Rand([3, 3], 202));
        GradCheck.Assert("nll_loss sum", x => Ops.NllLoss(x[0], labels, "sum"), GradCheck.Rand([3, 3], 203));
    }

    [Test]
    public void SmoothL1GradBothSidesOfBeta()
    {
        // Differences span (−2, 2) around β = 0.5, so both branches are exercised.
        GradCheck.Assert("smooth_l1", x => Ops.SmoothL1(x[0], x[1], 0.5), GradCheck.Rand([4, 5], 204), GradCheck.Rand([4, 5], 205));
        GradCheck.Assert("smooth_l1 none", x => Ops.SmoothL1(x[0].T, x[1], 0.5, "none"), GradCheck.Rand([5, 4], 206), GradCheck.Rand([4, 5], 207));
        using var p = GradCheck.Rand([4, 5], 204); using var t = GradCheck.Rand([4, 5], 205);
        var d = p.ToDoubleArray().Zip(t.ToDoubleArray(), (a, b) => Math.Abs(a - b)).ToArray();
        Assert.That(d.Count(v => v < 0.5), Is.GreaterThan(2));
        Assert.That(d.Count(v => v > 0.5), Is.GreaterThan(2));
    }

    [Test]
    public void CrossEntropyMatchesHandValue()
    {
        using var logits = Tensor.FromArray(new double[] { 1, 2, 3, 0, 0, 0 }, [2, 3]);
        using var labels = Labels(0, 2);
        double lse0 = Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3));
        double l0 = lse0 - 1, l1 = Math.Log(3);
        Assert.That(Ops.CrossEntropy(logits, labels).Item(), Is.EqualTo((l0 + l1) / 2).Within(1e-12));
        Assert.That(Ops.CrossEntropy(logits, labels, "sum").Item(), Is.EqualTo(l0 + l1).Within(1e-12));
        Assert.That(Ops.CrossEntropy(logits, labels, "none").ToDoubleArray(), Is.EqualTo(new[] { l0, l1 }).Within(1e-12));

        // Smoothing ε = 0.3: target (1−ε)·onehot + ε/C.
        double eps = 0.3;
        double s0 = 0;
        foreach (var (z, c) in new[] { (1.0, 0), (2.0, 1), (3.0, 2) }) s0 += ((c == 0 ? 1 - eps : 0) + eps / 3) * (lse0 - z);
        double s1 = Math.Log(3); // uniform logits: every class has −log p = log 3
        Assert.That(Ops.CrossEntropy(logits, labels, "none", eps).ToDoubleArray(), Is.EqualTo(new[] { s0, s1 }).Within(1e-12));
    }

    [Test]
    public void CrossEntropyFloat32AndExtremeLogits()
    {
        using var logits = Tensor.FromArray(new float[] { 1000, -1000, 0, 0 }, [2, 2]);
        using var labels = Labels(0, 1);
        Assert.That(Ops.CrossEntropy(logits, labels, "none").ToDoubleArray(), Is.EqualTo(new[] { 0, Math.Log(2) }).Within(1e-6));
    }

    [Test]
    public void NllLossPicksNegatedEntries()
    {
        using var lp = Tensor.FromArray(new double[] { -1, -2, -3, -4 }, [2, 2]);
        using var labels = Labels(1, 0);
        Assert.That(Ops.NllLoss(lp, labels).Item(), Is.EqualTo((2 + 3) / 2.0));
    }

    [Test]
    public void SmoothL1MatchesDefinition()
    {
        using var p = Tensor.FromArray(new double[] { 0.2, 3, -0.5 });
        using var t = Tensor.FromArray(new double[] { 0, 0, 0.5 });
        var v = Ops.SmoothL1(p, t, 1.0, "none").ToDoubleArray();
        Assert.That(v, Is.EqualTo(new[] { 0.5 * 0.04, 2.5, 0.5 }).Within(1e-12));
        Assert.That(Ops.SmoothL1(p, t, 2.0, "sum").Item(), Is.EqualTo(0.01 + 2.0 + 0.25).Within(1e-12));
        Assert.That(Ops.SmoothL1(p, t, 0.0, "mean").Item(), Is.EqualTo((0.2 + 3 + 1) / 3).Within(1e-12));
    }

    [Test]
    public void CrossEntropyLabelOutOfRangeNamesOpAndShapes()
    {
        using var logits = Tensor.Zeros([2, 3]);
        using var labels = Labels(1, 3);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.CrossEntropy(logits, labels));
        Assert.That(e!.Message, Does.Contain("cross_entropy").And.Contain("label 3").And.Contain("3 classes").And.Contain("[2, 3]").And.Contain("[2]"));
        using var neg = Labels(-1, 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.CrossEntropy(logits, neg));
    }

    [Test]
    public void CrossEntropyShapeAndArgumentErrors()
    {
        using var logits = Tensor.Zeros([2, 3]);
        using var three = Labels(0, 1, 2);
        var e = Assert.Throws<ShapeException>(() => Ops.CrossEntropy(logits, three));
        Assert.That(e!.Message, Does.Contain("cross_entropy").And.Contain("[2, 3]").And.Contain("[3]"));
        using var flat = Tensor.Zeros([6]);
        using var two = Labels(0, 1);
        e = Assert.Throws<ShapeException>(() => Ops.CrossEntropy(flat, two));
        Assert.That(e!.Message, Does.Contain("cross_entropy").And.Contain("[6]"));
        using var l2 = Tensor.FromArray(new long[] { 0, 1 }, [2, 1]);
        Assert.Throws<ShapeException>(() => Ops.CrossEntropy(logits, l2));
        var a = Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(logits, two, "avg"));
        Assert.That(a!.Message, Does.Contain("cross_entropy").And.Contain("avg"));
        Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(logits, two, labelSmoothing: 1.5));
        using var fl = Tensor.Zeros([2]);
        Assert.Throws<ArgumentException>(() => Ops.NllLoss(logits, fl));
    }
}
