using MtlMoe.Engine;
using MtlMoe.Engine.Amp;
using MtlMoe.Engine.MoE;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.Amp;

/// <summary>
/// Autocast wired into the ops: which dtypes each op runs in, the cast op's gradient (checked by finite differences in
/// float64), autocast gradients against float32 ones, the per-scope weight cast cache, and the float32 gate.
/// </summary>
public class AutocastOpsTests
{
    /// <summary>max |a − b| / max |b| over the elements (b the float32 reference).</summary>
    static double RelErr(Tensor a, Tensor b)
    {
        var x = a.ToDoubleArray(); var y = b.ToDoubleArray();
        double diff = 0, scale = 1e-12;
        for (int i = 0; i < x.Length; i++)
        {
            if (double.IsNaN(x[i]) || double.IsNaN(y[i])) return double.PositiveInfinity;
            diff = Math.Max(diff, Math.Abs(x[i] - y[i])); scale = Math.Max(scale, Math.Abs(y[i]));
        }
        return diff / scale;
    }

    [Test]
    public void CastBackwardPassesTheGradientThroughFiniteDifferences()
    {
        // f(x) = Σ w · widen(narrow(x)): narrowing to float32 is a rounding, whose derivative is 1 almost everywhere;
        // with ε = 1e-3 the rounding error of float32 (≤ 2⁻²⁴ relative) stays far below the check's tolerance.
        var err = GradCheck.MaxError(x =>
        {
            using var f = x[0].To(DType.Float32);
            using var m = Ops.MulScalar(f, 3);
            return m.To(DType.Float64);
        }, [GradCheck.Rand([3, 4], 1)], eps: 1e-3);
        Assert.That(err, Is.LessThan(1e-4));
    }

    [Test]
    public void CastToBf16SendsTheGradientBackWidenedExactly()
    {
        using var x = Tensor.RandN([6, 5], new Rng(2)).RequireGrad();
        using var b = x.To(DType.BFloat16);
        using var g = Tensor.RandN([6, 5], new Rng(3)).To(DType.BFloat16);
        b.Backward(g);
        Assert.That(x.Grad!.DType, Is.EqualTo(DType.Float32), "the master weight's gradient is float32");
        Assert.That(x.Grad.ToArray<float>(), Is.EqualTo(g.ToFloatArray()));
    }

    [Test]
    public void TensorCoreOpsRunInBf16AndLossesInFloat32()
    {
        using var scope = DisposeScope.Begin();
        var x = Tensor.RandN([2, 3, 8, 8], new Rng(4));
        var w = Tensor.RandN([4, 3, 3, 3], new Rng(5)).RequireGrad();
        var lw = Tensor.RandN([5, 4], new Rng(6)).RequireGrad();
        var labels = Tensor.FromArray(new long[] { 1, 3 });
        Tensor y, pooled, logits, loss, soft;
        using (Autocast.Enter(DType.BFloat16))
        {
            y = Ops.Conv2d(x, w, padding: 1);
            pooled = Ops.AdaptiveAvgPool2d(y, 1, 1).Flatten(1);
            logits = Ops.Linear(pooled, lw);
            soft = Ops.Softmax(logits, 1);
            loss = Ops.CrossEntropy(logits, labels);
        }
        Assert.That(y.DType, Is.EqualTo(DType.BFloat16), "conv2d");
        Assert.That(pooled.DType, Is.EqualTo(DType.BFloat16), "pooling keeps the activation's dtype");
        Assert.That(logits.DType, Is.EqualTo(DType.BFloat16), "linear");
        Assert.That(soft.DType, Is.EqualTo(DType.Float32), "softmax");
        Assert.That(loss.DType, Is.EqualTo(DType.Float32), "the loss");
        // Outside the scope the same ops run in float32 again.
        using var y2 = Ops.Conv2d(x, w, padding: 1);
        Assert.That(y2.DType, Is.EqualTo(DType.Float32));
    }

    [Test]
    public void AutocastGradientsFollowTheFloat32OpsWithinBf16Tolerance()
    {
        var x0 = Tensor.RandN([2, 4, 9, 9], new Rng(7));
        var w0 = Tensor.RandN([6, 4, 3, 3], new Rng(8));
        var b0 = Tensor.RandN([3], new Rng(9));
        var gamma = Tensor.Rand([6], new Rng(10), 0.5, 1.5);
        var beta = Tensor.RandN([6], new Rng(11));
        var lw0 = Tensor.RandN([3, 6], new Rng(12));
        (Tensor Out, Tensor[] Grads) Run(bool amp)
        {
            var x = x0.Clone().RequireGrad(); var w = w0.Clone().RequireGrad(); var b = b0.Clone().RequireGrad();
            var g = gamma.Clone().RequireGrad(); var bt = beta.Clone().RequireGrad(); var lw = lw0.Clone().RequireGrad();
            using var rm = Tensor.Zeros([6]); using var rv = Tensor.Ones([6]);
            Tensor loss;
            using (DisposeScope.Begin())
            {
                using (amp ? Autocast.Enter(DType.BFloat16) : null)
                {
                    var c = Ops.Conv2d(x, w, stride: 2, padding: 1);
                    var n = Ops.BatchNormRelu(c, g, bt, rm, rv, training: true);
                    var p = Ops.Mean(n, [2, 3]);
                    var l = Ops.Linear(p, lw, b);
                    loss = Ops.Sum(Ops.Mul(l, l)).DetachFromScope();
                }
                loss.Backward();
            }
            return (loss, new[] { x.Grad!, w.Grad!, b.Grad!, g.Grad!, bt.Grad!, lw.Grad! });
        }
        var (l32, g32) = Run(false);
        var (l16, g16) = Run(true);
        Assert.That(l16.DType, Is.EqualTo(DType.Float32));
        Assert.That(RelErr(l16, l32), Is.LessThan(3e-2), "loss");
        string[] names = ["x", "conv weight", "linear bias", "gamma", "beta", "linear weight"];
        for (int i = 0; i < names.Length; i++)
        {
            Assert.That(g16[i].DType, Is.EqualTo(DType.Float32), $"{names[i]}: gradient of a float32 leaf is float32");
            Assert.That(RelErr(g16[i], g32[i]), Is.LessThan(5e-2), $"{names[i]}: gradient");
        }
    }

    [Test]
    public void EachWeightIsCastOncePerScopeAndItsGradientSumsEveryUse()
    {
        var w = Tensor.RandN([5, 5], new Rng(13)).RequireGrad();
        var x = Tensor.RandN([3, 5], new Rng(14));
        Tensor loss;
        using (DisposeScope.Begin())
        {
            using (Autocast.Enter(DType.BFloat16))
            {
                var h = Ops.MatMul(x, w);
                var h2 = Ops.MatMul(h, w);
                Assert.That(Autocast.CachedCasts, Is.EqualTo(1), "the second matmul reuses the first cast of w");
                loss = Ops.Sum(h2).DetachFromScope();
            }
            Assert.That(Autocast.CachedCasts, Is.EqualTo(0), "the cache ends with its scope");
            loss.Backward();
        }
        // Reference in float32: d/dw Σ (x·w)·w = xᵀ·1·wᵀ + (x·w)ᵀ·1.
        var wr = Tensor.FromArray(w.ToArray<float>(), [5, 5]).RequireGrad();
        using (var h = Ops.MatMul(x, wr)) using (var h2 = Ops.MatMul(h, wr)) using (var s = Ops.Sum(h2)) s.Backward();
        Assert.That(RelErr(w.Grad!, wr.Grad!), Is.LessThan(3e-2));
        Assert.That(w.Grad!.DType, Is.EqualTo(DType.Float32));
    }

    [Test]
    public void TheGateStaysFloat32UnderAutocast()
    {
        // x holds bf16-exact values, so widening it inside the gate loses nothing: the gating must be bit-identical.
        using var xb = Tensor.RandN([16, 6], new Rng(15)).To(DType.BFloat16);
        using var x = xb.To(DType.Float32);
        using var wg = Tensor.RandN([6, 4], new Rng(16));
        using var wn = Tensor.RandN([6, 4], new Rng(17));
        using var plain = MoeFunctional.Gate(x, wg, wn, 2, 1e-2, training: true, new Rng(18));
        GatingResult amp;
        using (Autocast.Enter(DType.BFloat16)) amp = MoeFunctional.Gate(xb, wg, wn, 2, 1e-2, training: true, new Rng(18));
        using (amp)
        {
            Assert.That(amp.Gates.DType, Is.EqualTo(DType.Float32));
            Assert.That(amp.Gates.ToArray<float>(), Is.EqualTo(plain.Gates.ToArray<float>()));
            Assert.That(amp.Load.ToArray<float>(), Is.EqualTo(plain.Load.ToArray<float>()));
            Assert.That(amp.TopIndices.ToArray<int>(), Is.EqualTo(plain.TopIndices.ToArray<int>()));
        }
    }

    [Test]
    public void MixedPairsPromoteOnlyUnderAutocast()
    {
        using var a = Tensor.RandN([4], new Rng(19)).To(DType.BFloat16);
        using var b = Tensor.RandN([4], new Rng(20));
        Assert.Throws<InvalidOperationException>(() => Ops.Add(a, b).Dispose(), "without autocast dtypes must match");
        using (Autocast.Enter(DType.BFloat16))
        {
            using var s = Ops.Add(a, b);
            using var both = Ops.Mul(a, a);
            Assert.That(s.DType, Is.EqualTo(DType.Float32), "a mixed pair runs in float32");
            Assert.That(both.DType, Is.EqualTo(DType.BFloat16), "two activations stay bf16");
        }
    }

    [Test]
    public void BackwardInsideTheScopeDoesNotRecast()
    {
        var w = Tensor.RandN([4, 3], new Rng(21)).RequireGrad();
        using var x = Tensor.RandN([2, 4], new Rng(22));
        using (Autocast.Enter(DType.BFloat16))
        {
            using var y = Ops.MatMul(x, w);
            using var s = Ops.Sum(y);
            s.Backward();
        }
        Assert.That(w.Grad!.DType, Is.EqualTo(DType.Float32));
        Assert.That(w.Grad.Shape, Is.EqualTo(new[] { 4, 3 }));
    }
}
