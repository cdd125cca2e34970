using MtlMoe.Engine;
using MtlMoe.Engine.NN;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.NnOptim;

public class DropoutTests
{
    [Test]
    public void MaskStatisticsAndScaling()
    {
        using var x = Tensor.Ones([200, 500]);
        using var y = Ops.Dropout(x, 0.3, training: true, new Rng(1));
        var v = y.ToArray<float>();
        int zeros = v.Count(a => a == 0);
        Assert.That(zeros / (double)v.Length, Is.EqualTo(0.3).Within(0.01));
        float keep = (float)(1 / 0.7);
        Assert.That(v.Where(a => a != 0).All(a => a == keep), Is.True, "kept elements are scaled by 1/(1-p)");
        Assert.That(v.Average(a => (double)a), Is.EqualTo(1.0).Within(0.02), "expectation preserved");
    }

    [Test]
    public void SameSeedSameMaskAndGradientIsTheMask()
    {
        using var x = Tensor.Rand([4, 6], new Rng(3), 1, 2, DType.Float64).RequireGrad();
        using var y1 = Ops.Dropout(x, 0.5, true, new Rng(9));
        using var y2 = Ops.Dropout(x, 0.5, true, new Rng(9));
        Assert.That(y1.ToArray<double>(), Is.EqualTo(y2.ToArray<double>()));
        using var s = Ops.Sum(y1);
        s.Backward();
        var g = x.Grad!.ToArray<double>();
        var yv = y1.ToArray<double>(); var xv = x.ToArray<double>();
        for (int i = 0; i < g.Length; i++) Assert.That(g[i], Is.EqualTo(yv[i] / xv[i]).Within(1e-12));
        Assert.That(g.Distinct().OrderBy(a => a), Is.EqualTo(new[] { 0.0, 2.0 }));
        x.ZeroGrad();
    }

    [Test]
    public void EvalAndZeroProbabilityAreIdentity()
    {
        using var x = Tensor.Rand([3, 4], new Rng(2));
        using var e = Ops.Dropout(x, 0.7, training: false);
        using var z = Ops.Dropout(x, 0, training: true);
        Assert.That(e.ToArray<float>(), Is.EqualTo(x.ToArray<float>()));
        Assert.That(z.ToArray<float>(), Is.EqualTo(x.ToArray<float>()));
        Assert.That(ReferenceEquals(e, x), Is.False, "a separate tensor the caller can dispose");
    }

    [Test]
    public void ProbabilityOneGivesZeros()
    {
        using var x = Tensor.Rand([5, 5], new Rng(4), 1, 2, DType.Float64).RequireGrad();
        using var y = Ops.Dropout(x, 1, true, new Rng(1));
        Assert.That(y.ToArray<double>().All(a => a == 0), Is.True);
        using var s = Ops.Sum(y);
        s.Backward();
        Assert.That(x.Grad!.ToArray<double>().All(a => a == 0), Is.True);
        x.ZeroGrad();
    }

    [TestCase(-0.1)]
    [TestCase(1.5)]
    [TestCase(double.NaN)]
    public void ProbabilityOutsideRangeThrows(double p)
    {
        using var x = Tensor.Ones([2, 3]);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Dropout(x, p, true));
        Assert.That(ex!.Message, Does.Contain("dropout").And.Contain("[2, 3]"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(p));
    }

    [Test]
    public void GradientCheck() =>
        GradCheck.Assert("dropout", x => Ops.Dropout(x[0], 0.4, true, new Rng(7)), GradCheck.Rand([3, 5], 1));

    [Test]
    public void GradientCheckNonContiguous() =>
        GradCheck.Assert("dropout transposed", x => Ops.Dropout(x[0].T, 0.25, true, new Rng(8)), GradCheck.Rand([4, 3], 2));

    [Test]
    public void DropoutModuleFollowsTrainingMode()
    {
        using var m = new Dropout(0.5, new Rng(5));
        using var x = Tensor.Ones([10, 10]);
        using (var y = m.Forward(x)) Assert.That(y.ToArray<float>().Count(a => a == 0), Is.InRange(20, 80));
        m.Eval();
        using (var y = m.Forward(x)) Assert.That(y.ToArray<float>().All(a => a == 1), Is.True);
    }
}

public class SimpleModuleTests
{
    [Test]
    public void ReluModule()
    {
        using var m = new ReLU();
        using var x = Tensor.FromArray(new[] { -1.0f, 0, 2 });
        using var y = m.Forward(x);
        Assert.That(y.ToArray<float>(), Is.EqualTo(new[] { 0f, 0, 2 }));
    }

    [Test]
    public void FlattenModule()
    {
        using var x = Tensor.Zeros([2, 3, 4, 5]);
        using (var m = new Flatten()) using (var y = m.Forward(x)) Assert.That(y.Shape, Is.EqualTo(new[] { 2, 60 }));
        using (var m = new Flatten(1, 2)) using (var y = m.Forward(x)) Assert.That(y.Shape, Is.EqualTo(new[] { 2, 12, 5 }));
        using (var m = new Flatten(0, -2)) using (var y = m.Forward(x)) Assert.That(y.Shape, Is.EqualTo(new[] { 24, 5 }));
        using var bad = new Flatten(2, 1);
        var ex = Assert.Throws<ShapeException>(() => bad.Forward(x));
        Assert.That(ex!.Message, Does.Contain("flatten").And.Contain("[2, 3, 4, 5]"));
    }

    [Test]
    public void FlattenGradientNonContiguous() =>
        GradCheck.Assert("flatten", x => { using var f = new Flatten(); return f.Forward(x[0].Permute(2, 0, 1)); }, GradCheck.Rand([2, 3, 4], 3));

    [Test]
    public void IdentityPassesValuesAndGradients()
    {
        using var m = new Identity();
        using var x = Tensor.FromArray(new[] { 1.0, 2, 3 }).RequireGrad();
        using var y = m.Forward(x);
        Assert.That(y.ToArray<double>(), Is.EqualTo(new[] { 1.0, 2, 3 }));
        using var s = Ops.Sum(y);
        s.Backward();
        Assert.That(x.Grad!.ToArray<double>(), Is.EqualTo(new[] { 1.0, 1, 1 }));
        x.ZeroGrad();
    }
}
