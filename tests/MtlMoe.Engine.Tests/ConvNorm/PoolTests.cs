using MtlMoe.Engine;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.ConvNorm;

/// <summary>Pooling: hand-computed values and float64 gradient checks.</summary>
public class PoolTests
{
    private static Tensor Ramp(int h, int w, double sign = 1)
        => Tensor.FromArray(Enumerable.Range(0, h * w).Select(i => sign * i).ToArray(), [1, 1, h, w]);

    [Test]
    public void MaxPool2x2Values()
    {
        using var x = Ramp(4, 4);
        using var y = Ops.MaxPool2d(x, 2);
        Assert.That(y.Shape, Is.EqualTo(new[] { 1, 1, 2, 2 }));
        Assert.That(y.ToDoubleArray(), Is.EqualTo(new double[] { 5, 7, 13, 15 }));
    }

    [Test]
    public void MaxPoolPaddingIsMinusInfinity()
    {
        // x = −(0..15) as 4×4, k3 s2 p1: a zero-padded max would give 0 in every window touching the border.
        using var x = Ramp(4, 4, -1);
        using var y = Ops.MaxPool2d(x, 3, 2, 1);
        Assert.That(y.ToDoubleArray(), Is.EqualTo(new double[] { 0, -1, -4, -5 }));
    }

    [Test]
    public void MaxPoolGradientGoesToTheMaximum()
    {
        using var x = Ramp(4, 4).RequireGrad();
        using var y = Ops.MaxPool2d(x, 2);
        using var s = Ops.Sum(y);
        s.Backward();
        var g = x.Grad!.ToDoubleArray();
        var expect = new double[16];
        foreach (var i in new[] { 5, 7, 13, 15 }) expect[i] = 1;
        Assert.That(g, Is.EqualTo(expect));
    }

    [Test]
    public void AvgPool2x2Values()
    {
        using var x = Ramp(4, 4);
        using var y = Ops.AvgPool2d(x, 2);
        Assert.That(y.ToDoubleArray(), Is.EqualTo(new double[] { 2.5, 4.5, 10.5, 12.5 }));
    }

    [Test]
    public void AvgPoolPaddingCountsInDivisor()
    {
        using var x = Ramp(4, 4);
        using var y = Ops.AvgPool2d(x, 3, 2, 1);
        Assert.That(y.ToDoubleArray(), Is.EqualTo(new[] { 10 / 9.0, 24 / 9.0, 51 / 9.0, 90 / 9.0 }).Within(1e-12));
    }

    [Test]
    public void AdaptiveAvgPoolUnevenBins()
    {
        // W = 5 → 3 bins: [0, 2), [1, 4), [3, 5).
        using var x = Ramp(1, 5);
        using var y = Ops.AdaptiveAvgPool2d(x, 1, 3);
        Assert.That(y.ToDoubleArray(), Is.EqualTo(new[] { 0.5, 2.0, 3.5 }).Within(1e-12));
    }

    [Test]
    public void AdaptiveAvgPoolGlobal()
    {
        using var x = Ramp(3, 4);
        using var y = Ops.AdaptiveAvgPool2d(x, 1, 1);
        Assert.That(y.Shape, Is.EqualTo(new[] { 1, 1, 1, 1 }));
        Assert.That(y.Item(), Is.EqualTo(5.5).Within(1e-12));
    }

    [Test]
    public void Float32MatchesFloat64()
    {
        using var x = Tensor.Rand([2, 3, 9, 7], new Rng(40), -1, 1, DType.Float64);
        using var xf = x.To(DType.Float32);
        foreach (var f in new Func<Tensor, Tensor>[] { t => Ops.MaxPool2d(t, 3, 2, 1), t => Ops.AvgPool2d(t, 3, 2, 1), t => Ops.AdaptiveAvgPool2d(t, 4, 3) })
        {
            using var a = f(x); using var b = f(xf);
            Assert.That(b.ToDoubleArray(), Is.EqualTo(a.ToDoubleArray()).Within(1e-6));
        }
    }

    [Test] public void MaxPoolGrad() => GradCheck.Assert("max_pool2d", x => Ops.MaxPool2d(x[0], 2), GradCheck.Rand([2, 3, 6, 5], 41));
    [Test] public void MaxPoolGradOverlappingPadded() => GradCheck.Assert("max_pool2d k3 s2 p1", x => Ops.MaxPool2d(x[0], 3, 2, 1), GradCheck.Rand([2, 2, 7, 6], 42));
    [Test] public void MaxPoolGradNonContiguous() => GradCheck.Assert("max_pool2d permuted",
        x => { using var p = x[0].Permute(0, 3, 1, 2); return Ops.MaxPool2d(p, 2, 1); }, GradCheck.Rand([2, 5, 4, 3], 43));
    [Test] public void AvgPoolGrad() => GradCheck.Assert("avg_pool2d", x => Ops.AvgPool2d(x[0], 2), GradCheck.Rand([2, 3, 6, 5], 44));
    [Test] public void AvgPoolGradOverlappingPadded() => GradCheck.Assert("avg_pool2d k3 s2 p1", x => Ops.AvgPool2d(x[0], 3, 2, 1), GradCheck.Rand([2, 2, 7, 6], 45));
    [Test] public void AdaptiveAvgPoolGradNonDividing() => GradCheck.Assert("adaptive_avg_pool2d 7x5→3x2", x => Ops.AdaptiveAvgPool2d(x[0], 3, 2), GradCheck.Rand([2, 2, 7, 5], 46));
    [Test] public void AdaptiveAvgPoolGradUpsampling() => GradCheck.Assert("adaptive_avg_pool2d 3x2→4x5",
        x => { using var p = x[0].Transpose(2, 3); return Ops.AdaptiveAvgPool2d(p, 4, 5); }, GradCheck.Rand([1, 2, 2, 3], 47));
}
