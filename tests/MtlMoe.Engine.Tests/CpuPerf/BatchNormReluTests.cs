using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>The fused batch-norm + ReLU against relu(batch_norm2d(x)) (forward, running stats, gradients).</summary>
public class BatchNormReluTests
{
    [TestCase(2, 3, 5, 7)]   // plane 35: not a multiple of the vector width
    [TestCase(4, 5, 8, 8)]
    [TestCase(3, 2, 1, 1)]
    public void MatchesComposedOps(int n, int c, int h, int w)
    {
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var rng = new Rng(17);
            using var x0 = Tensor.Rand([n, h, c, w], rng, -2, 2, dtype);
            using var wt = Tensor.Rand([c], rng, 0.5, 1.5, dtype).RequireGrad();
            using var bs = Tensor.Rand([c], rng, -0.5, 0.5, dtype).RequireGrad();
            using var dy = Tensor.Rand([n, c, h, w], rng, -1, 1, dtype);
            (double[] Y, double[] Dx, double[] Dw, double[] Db, double[] Rm, double[] Rv) Run(bool fused)
            {
                using var x = x0.Permute(0, 2, 1, 3).RequireGrad(); // non-contiguous input
                using var rm = Tensor.Zeros([c], dtype); using var rv = Tensor.Ones([c], dtype);
                Tensor y;
                if (fused) y = Ops.BatchNormRelu(x, wt, bs, rm, rv, training: true);
                else { using var b = Ops.BatchNorm2d(x, wt, bs, rm, rv, training: true); y = Ops.Relu(b); }
                using (y)
                {
                    y.Backward(dy);
                    var r = (y.ToDoubleArray(), x.Grad!.ToDoubleArray(), wt.Grad!.ToDoubleArray(), bs.Grad!.ToDoubleArray(), rm.ToDoubleArray(), rv.ToDoubleArray());
                    x.ZeroGrad(); wt.ZeroGrad(); bs.ZeroGrad();
                    return r;
                }
            }
            var f = Run(true); var e = Run(false);
            double tol = dtype == DType.Float64 ? 1e-12 : 1e-5;
            Assert.That(f.Y, Is.EqualTo(e.Y).Within(tol), "y");
            Assert.That(f.Y.Count(v => v == 0), Is.GreaterThan(0), "some outputs are clamped");
            Assert.That(f.Dx, Is.EqualTo(e.Dx).Within(tol), "dx");
            Assert.That(f.Dw, Is.EqualTo(e.Dw).Within(tol), "dw");
            Assert.That(f.Db, Is.EqualTo(e.Db).Within(tol), "db");
            Assert.That(f.Rm, Is.EqualTo(e.Rm).Within(tol), "running mean");
            Assert.That(f.Rv, Is.EqualTo(e.Rv).Within(tol), "running var");
        }
    }

    [Test]
    public void GradientChecks()
    {
        using var rm = Tensor.Zeros([3], DType.Float64); using var rv = Tensor.Ones([3], DType.Float64);
        GradCheck.Assert("batch_norm2d_relu", t => Ops.BatchNormRelu(t[0].Permute(0, 2, 1, 3), t[1], t[2], rm, rv, training: true),
            GradCheck.Rand([2, 4, 3, 3], 41, -2, 2), GradCheck.Rand([3], 42, 0.5, 1.5), GradCheck.Rand([3], 43, 0.2, 0.6));
    }
}
