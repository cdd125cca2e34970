using MtlMoe.Engine;
using MtlMoe.Engine.Optim;

namespace MtlMoe.Tests.NnOptim;

public class OptimizerTests
{
    private static Tensor Param(params double[] v) => Tensor.FromArray(v).RequireGrad();

    private static void SetGrad(Tensor p, params double[] g)
    {
        p.ZeroGrad();
        p.Grad = Tensor.FromArray(g, (int[])p.Shape.Clone()).To(p.DType);
    }

    private static double Value(Tensor p) => p.ToDoubleArray()[0];

    [Test]
    public void SgdMomentumMatchesHandComputedSteps()
    {
        using var p = Param(1.0);
        using var opt = new SGD([p], lr: 0.1, momentum: 0.9);
        // buf₁ = g = 0.5 → p = 0.95; buf₂ = 0.9·0.5 + 0.5 = 0.95 → p = 0.855; buf₃ = 1.355 → p = 0.7195.
        double[] expected = [0.95, 0.855, 0.7195];
        foreach (var e in expected) { SetGrad(p, 0.5); opt.Step(); Assert.That(Value(p), Is.EqualTo(e).Within(1e-12)); }
        p.ZeroGrad();
    }

    [Test]
    public void SgdNesterovMatchesHandComputedSteps()
    {
        using var p = Param(1.0);
        using var opt = new SGD([p], lr: 0.1, momentum: 0.9, nesterov: true);
        // d₁ = 0.5 + 0.9·0.5 = 0.95 → 0.905; buf₂ = 0.95, d₂ = 0.5 + 0.855 = 1.355 → 0.7695.
        SetGrad(p, 0.5); opt.Step(); Assert.That(Value(p), Is.EqualTo(0.905).Within(1e-12));
        SetGrad(p, 0.5); opt.Step(); Assert.That(Value(p), Is.EqualTo(0.7695).Within(1e-12));
        p.ZeroGrad();
    }

    [Test]
    public void SgdWeightDecayAndDampeningMatchHandComputedSteps()
    {
        using var p = Param(1.0);
        using var opt = new SGD([p], lr: 0.1, weightDecay: 0.1);
        // d = 0.5 + 0.1·1 = 0.6 → 0.94; d = 0.5 + 0.094 = 0.594 → 0.8806.
        SetGrad(p, 0.5); opt.Step(); Assert.That(Value(p), Is.EqualTo(0.94).Within(1e-12));
        SetGrad(p, 0.5); opt.Step(); Assert.That(Value(p), Is.EqualTo(0.8806).Within(1e-12));

        using var q = Param(1.0);
        using var damp = new SGD([q], lr: 0.1, momentum: 0.5, dampening: 0.5);
        // buf₁ = 0.5 (first step ignores dampening) → 0.95; buf₂ = 0.25 + 0.5·0.5 = 0.5 → 0.90.
        SetGrad(q, 0.5); damp.Step(); Assert.That(Value(q), Is.EqualTo(0.95).Within(1e-12));
        SetGrad(q, 0.5); damp.Step(); Assert.That(Value(q), Is.EqualTo(0.90).Within(1e-12));
        p.ZeroGrad(); q.ZeroGrad();
    }

    [Test]
    public void AdamWFirstStepMatchesHandComputation()
    {
        using var p = Param(1.0);
        using var opt = new AdamW([p], lr: 0.1, weightDecay: 0.01);
        SetGrad(p, 0.5); opt.Step();
        // p·(1 − 0.001) = 0.999; m̂ = 0.5, √v̂ = 0.5 → step 0.1·0.5/(0.5 + 1e-8).
        Assert.That(Value(p), Is.EqualTo(0.999 - 0.1 * 0.5 / (0.5 + 1e-8)).Within(1e-12));
        p.ZeroGrad();
    }

    /// <summary>AdamW written out plainly in double, as PyTorch defines it.</summary>
    private static double[] AdamWReference(double[] p, double[][] grads, double lr, double b1, double b2, double eps, double wd)
    {
        p = (double[])p.Clone();
        var m = new double[p.Length]; var v = new double[p.Length];
        for (int t = 1; t <= grads.Length; t++)
            for (int i = 0; i < p.Length; i++)
            {
                double g = grads[t - 1][i];
                p[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                double mh = m[i] / (1 - Math.Pow(b1, t)), vh = v[i] / (1 - Math.Pow(b2, t));
                p[i] -= lr * mh / (Math.Sqrt(vh) + eps);
            }
        return p;
    }

    [TestCase(DType.Float64, 1e-12)]
    [TestCase(DType.Float32, 2e-6)]
    public void AdamWMatchesReferenceOverSeveralSteps(DType dtype, double tol)
    {
        var rng = new Rng(11);
        int n = 37; // vector body and scalar tail
        var p0 = Enumerable.Range(0, n).Select(_ => rng.Uniform(-1, 1)).ToArray();
        var grads = Enumerable.Range(0, 5).Select(_ => Enumerable.Range(0, n).Select(_ => rng.Uniform(-1, 1)).ToArray()).ToArray();
        if (dtype == DType.Float32) { p0 = p0.Select(a => (double)(float)a).ToArray(); grads = grads.Select(g => g.Select(a => (double)(float)a).ToArray()).ToArray(); }
        using var p = Tensor.FromArray(p0).To(dtype).RequireGrad();
        using var opt = new AdamW([p], lr: 0.01, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1);
        foreach (var g in grads) { SetGrad(p, g); opt.Step(); }
        var expected = AdamWReference(p0, grads, 0.01, 0.8, 0.95, 1e-6, 0.1);
        Assert.That(p.ToDoubleArray(), Is.EqualTo(expected).Within(tol));
        p.ZeroGrad();
    }

    [Test]
    public void ParametersWithoutGradientAreSkipped()
    {
        using var a = Param(1.0); using var b = Param(2.0);
        using var opt = new AdamW([a, b], lr: 0.1);
        SetGrad(a, 1.0);
        opt.Step();
        Assert.That(Value(b), Is.EqualTo(2.0), "no gradient: not even decayed");
        Assert.That(Value(a), Is.Not.EqualTo(1.0));
        var state = opt.StateTensors();
        Assert.That(state.Keys, Does.Contain("state.0.exp_avg").And.Not.Contain("state.1.exp_avg"));
        foreach (var t in state.Values) t.Dispose();
        a.ZeroGrad();
    }

    [Test]
    public void BadArgumentsThrow()
    {
        using var p = Param(1.0);
        Assert.That(Assert.Throws<ArgumentException>(() => new SGD([p], 0.1, nesterov: true))!.Message, Does.Contain("sgd").And.Contain("Nesterov"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([p], beta1: 1.0));
        Assert.Throws<ArgumentException>(() => new SGD([p, p], 0.1));
        Assert.Throws<ArgumentException>(() => new SGD([], 0.1));
        using var opt = new SGD([p], 0.1);
        p.Grad = Tensor.Zeros([2], DType.Float64);
        var ex = Assert.Throws<ShapeException>(() => opt.Step());
        Assert.That(ex!.Message, Does.Contain("sgd").And.Contain("[2]").And.Contain("[1]"));
        p.ZeroGrad();
    }
}
