using MtlMoe.Engine;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>The fused residual tail relu(batch_norm2d(x) + r) against the three separate ops (forward, running stats, gradients).</summary>
public class BatchNormAddReluTests
{
    [TestCase(2, 3, 5, 7)]   // plane 35: not a multiple of the vector width
    [TestCase(4, 5, 8, 8)]
    [TestCase(3, 2, 1, 1)]
    public void MatchesComposedOps(int n, int c, int h, int w)
    {
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var rng = new Rng(23);
            using var x0 = Tensor.Rand([n, h, c, w], rng, -2, 2, dtype);
            using var r0 = Tensor.Rand([n, c, w, h], rng, -1, 1, dtype);
            using var wt = Tensor.Rand([c], rng, 0.5, 1.5, dtype).RequireGrad();
            using var bs = Tensor.Rand([c], rng, -0.5, 0.5, dtype).RequireGrad();
            using var dy = Tensor.Rand([n, c, h, w], rng, -1, 1, dtype);
            (double[] Y, double[] Dx, double[] Dr, double[] Dw, double[] Db, double[] Rm, double[] Rv) Run(bool fused)
            {
                using var x = x0.Permute(0, 2, 1, 3).RequireGrad(); // non-contiguous input
                using var r = r0.Permute(0, 1, 3, 2).RequireGrad(); // non-contiguous residual
                using var rm = Tensor.Zeros([c], dtype); using var rv = Tensor.Ones([c], dtype);
                Tensor y;
                if (fused) y = Ops.BatchNormAddRelu(x, r, wt, bs, rm, rv, training: true);
                else { using var b = Ops.BatchNorm2d(x, wt, bs, rm, rv, training: true); using var s = Ops.Add(b, r); y = Ops.Relu(s); }
                using (y)
                {
                    y.Backward(dy);
                    var res = (y.ToDoubleArray(), x.Grad!.ToDoubleArray(), r.Grad!.ToDoubleArray(), wt.Grad!.ToDoubleArray(), bs.Grad!.ToDoubleArray(),
                        rm.ToDoubleArray(), rv.ToDoubleArray());
                    x.ZeroGrad(); r.ZeroGrad(); wt.ZeroGrad(); bs.ZeroGrad();
                    return res;
                }
            }
            var f = Run(true); var e = Run(false);
            double tol = dtype == DType.Float64 ? 1e-12 : 1e-5;
            Assert.That(f.Y, Is.EqualTo(e.Y), $"y is bit-identical ({dtype})");
            Assert.That(f.Y.Count(v => v == 0), Is.GreaterThan(0), "some outputs are clamped");
            Assert.That(f.Y.Count(v => v > 0), Is.GreaterThan(0), "some outputs pass");
            Assert.That(f.Dx, Is.EqualTo(e.Dx).Within(tol), "dx");
            Assert.That(f.Dr, Is.EqualTo(e.Dr), "d residual (the masked dy, exact)");
            Assert.That(f.Dw, Is.EqualTo(e.Dw).Within(tol), "dw");
            Assert.That(f.Db, Is.EqualTo(e.Db).Within(tol), "db");
            Assert.That(f.Rm, Is.EqualTo(e.Rm).Within(tol), "running mean");
            Assert.That(f.Rv, Is.EqualTo(e.Rv).Within(tol), "running var");
        }
    }

    [Test]
    public void EvalModeMatchesComposedOps()
    {
        var rng = new Rng(5);
        using var x = Tensor.Rand([2, 3, 4, 5], rng, -2, 2, DType.Float32);
        using var r = Tensor.Rand([2, 3, 4, 5], rng, -1, 1, DType.Float32);
        using var wt = Tensor.Rand([3], rng, 0.5, 1.5, DType.Float32);
        using var bs = Tensor.Rand([3], rng, -0.5, 0.5, DType.Float32);
        using var rm = Tensor.Rand([3], rng, -0.3, 0.3, DType.Float32); using var rv = Tensor.Rand([3], rng, 0.5, 2, DType.Float32);
        using var f = Ops.BatchNormAddRelu(x, r, wt, bs, rm, rv, training: false);
        using var b = Ops.BatchNorm2d(x, wt, bs, rm, rv, training: false);
        using var s = Ops.Add(b, r);
        using var e = Ops.Relu(s);
        Assert.That(f.ToDoubleArray(), Is.EqualTo(e.ToDoubleArray()));
    }

    [Test]
    public void GradientChecks()
    {
        using var rm = Tensor.Zeros([3], DType.Float64); using var rv = Tensor.Ones([3], DType.Float64);
        GradCheck.Assert("batch_norm2d_add_relu",
            t => Ops.BatchNormAddRelu(t[0].Permute(0, 2, 1, 3), t[3].Permute(0, 1, 3, 2), t[1], t[2], rm, rv, training: true),
            GradCheck.Rand([2, 4, 3, 3], 51, -2, 2), GradCheck.Rand([3], 52, 0.5, 1.5), GradCheck.Rand([3], 53, 0.2, 0.6),
            GradCheck.Rand([2, 3, 3, 4], 54, -1, 1));
    }

    [Test]
    public void GradientChecksWithoutAffine()
    {
        using var rm = Tensor.Zeros([2], DType.Float64); using var rv = Tensor.Ones([2], DType.Float64);
        GradCheck.Assert("batch_norm2d_add_relu (no weight, bias)",
            t => Ops.BatchNormAddRelu(t[0], t[1].T, null, null, rm, rv, training: true),
            GradCheck.Rand([3, 2, 2, 3], 61, -2, 2), GradCheck.Rand([3, 2, 3, 2], 62, -1, 1));
    }

    [Test]
    public void ResidualShapeMismatchNamesOpAndShapes()
    {
        using var x = Tensor.Zeros([2, 3, 4, 4]);
        using var r = Tensor.Zeros([2, 3, 4, 5]);
        using var rm = Tensor.Zeros([3]); using var rv = Tensor.Ones([3]);
        var ex = Assert.Throws<ShapeException>(() => Ops.BatchNormAddRelu(x, r, null, null, rm, rv, training: true))!;
        Assert.That(ex.Message, Does.Contain("batch_norm2d_add_relu").And.Contain("[2, 3, 4, 5]").And.Contain("[2, 3, 4, 4]"));
    }

    /// <summary>relu(NaN) is NaN, as in Ops.Relu, in the vector body and the scalar tail alike (a swallowed NaN hides divergence).</summary>
    [Test]
    public void NaNPropagatesLikeRelu()
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            // planes of 37: a vector body and a scalar tail for both widths
            using var x = Tensor.Rand([2, 2, 1, 37], new Rng(5), -1, 1, dtype);
            var rv = new double[2 * 2 * 37];
            foreach (int at in new[] { 3, 36, 74 + 20, 74 + 36 }) rv[at] = double.NaN;
            using var r = Tensor.FromArray(rv, [2, 2, 1, 37]).To(dtype);
            using var rm = Tensor.Zeros([2], dtype); using var rvar = Tensor.Ones([2], dtype);
            using var y = Ops.BatchNormAddRelu(x, r, null, null, rm, rvar, training: true);
            var yv = y.ToDoubleArray();
            for (int i = 0; i < yv.Length; i++)
                Assert.That(double.IsNaN(yv[i]), Is.EqualTo(double.IsNaN(rv[i])), $"{dtype.Name()} element {i}");
            // The fused batch-norm+ReLU in training: a channel whose statistics are NaN gives NaN over its whole plane
            // (vector body and tail); the other channel stays finite.
            var xv = x.ToDoubleArray();
            for (int i = 0; i < xv.Length; i++) if (i / 37 % 2 == 1) xv[i] = double.NaN;   // channel 1 of both images
            using var xn = Tensor.FromArray(xv, [2, 2, 1, 37]).To(dtype);
            using var rm2 = Tensor.Zeros([2], dtype); using var rv2 = Tensor.Ones([2], dtype);
            using var y2 = Ops.BatchNormRelu(xn, null, null, rm2, rv2, training: true);
            var y2v = y2.ToDoubleArray();
            for (int i = 0; i < y2v.Length; i++)
                Assert.That(double.IsNaN(y2v[i]), Is.EqualTo(i / 37 % 2 == 1), $"batch-norm+ReLU {dtype.Name()} element {i}");
        }
    }
}
