using MtlMoe.Engine;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.ConvNorm;

/// <summary>Batch-norm: gradients in training and eval mode, normalised output, running statistics.</summary>
public class BatchNormTests
{
    private static Tensor Buf(double v, int c) => Tensor.Full([c], v, DType.Float64);

    [Test]
    public void TrainingGrad()
    {
        using var rm = Buf(0, 3); using var rv = Buf(1, 3);
        GradCheck.Assert("batch_norm2d train", x => Ops.BatchNorm2d(x[0], x[1], x[2], rm, rv, training: true),
            GradCheck.Rand([3, 3, 4, 2], 51), GradCheck.Rand([3], 52, 0.5, 1.5), GradCheck.Rand([3], 53));
    }

    [Test]
    public void TrainingGradNoAffineNonContiguous()
    {
        using var rm = Buf(0, 2); using var rv = Buf(1, 2);
        GradCheck.Assert("batch_norm2d train permuted", x => { using var p = x[0].Permute(0, 3, 1, 2); return Ops.BatchNorm2d(p, null, null, rm, rv, training: true); },
            GradCheck.Rand([2, 3, 4, 2], 54));
    }

    [Test]
    public void EvalGrad()
    {
        using var rm = Tensor.FromArray(new[] { 0.3, -0.2, 0.1 }); using var rv = Tensor.FromArray(new[] { 0.5, 1.5, 2.0 });
        GradCheck.Assert("batch_norm2d eval", x => Ops.BatchNorm2d(x[0], x[1], x[2], rm, rv, training: false),
            GradCheck.Rand([2, 3, 3, 3], 55), GradCheck.Rand([3], 56, 0.5, 1.5), GradCheck.Rand([3], 57));
    }

    [Test]
    public void TrainingOutputIsNormalised()
    {
        using var x = Tensor.Rand([4, 3, 5, 5], new Rng(58), -2, 5);
        using var rm = Tensor.Zeros([3]); using var rv = Tensor.Ones([3]);
        using var w = Tensor.FromArray(new float[] { 2, 1, 0.5f }); using var b = Tensor.FromArray(new float[] { 1, 0, -1 });
        using var y = Ops.BatchNorm2d(x, w, b, rm, rv, training: true);
        using var mean = Ops.Mean(y, [0, 2, 3]);
        using var var = Ops.Var(y, [0, 2, 3]);
        Assert.That(mean.ToDoubleArray(), Is.EqualTo(new[] { 1.0, 0, -1 }).Within(1e-5));
        Assert.That(var.ToDoubleArray(), Is.EqualTo(new[] { 4.0, 1, 0.25 }).Within(1e-3)); // (γ²·var/(var + eps))
    }

    [Test]
    public void EvalUsesRunningStatistics()
    {
        using var x = Tensor.FromArray(new[] { 1.0, 2, 3, 4 }, [1, 2, 1, 2]);
        using var rm = Tensor.FromArray(new[] { 1.0, -1 }); using var rv = Tensor.FromArray(new[] { 4.0, 0.25 });
        using var w = Tensor.FromArray(new[] { 2.0, 1 }); using var b = Tensor.FromArray(new[] { 0.5, 0 });
        using var y = Ops.BatchNorm2d(x, w, b, rm, rv, training: false, eps: 0);
        Assert.That(y.ToDoubleArray(), Is.EqualTo(new[] { 0.5, 1.5, 8, 10 }).Within(1e-12));
        Assert.That(rm.ToDoubleArray(), Is.EqualTo(new[] { 1.0, -1 }), "eval leaves running stats alone");
    }

    [Test]
    public void EvalBackwardUsesStatisticsOfItsForward()
    {
        using var x = Tensor.FromArray(new[] { 1.0, 3 }, [2, 1, 1, 1]);
        using var w = Tensor.FromArray(new[] { 1.0 }).RequireGrad();
        using var rm = Tensor.FromArray(new[] { 1.0 }); using var rv = Tensor.FromArray(new[] { 4.0 });
        using var y = Ops.BatchNorm2d(x, w, null, rm, rv, training: false, eps: 0);
        rm.Fill(100); rv.Fill(100); // a later step changes the buffers before this backward runs
        using var s = Ops.Sum(y);
        s.Backward();
        Assert.That(w.Grad!.Item(), Is.EqualTo((0 + 2) / 2.0).Within(1e-12)); // Σ (x − 1)/2
    }

    [Test]
    public void RunningStatisticsAfterTwoSteps()
    {
        const double momentum = 0.3;
        var shape = new[] { 2, 2, 3, 2 };
        using var x1 = Tensor.Rand(shape, new Rng(60), -1, 3, DType.Float64);
        using var x2 = Tensor.Rand(shape, new Rng(61), -4, 1, DType.Float64);
        using var rm = Buf(0, 2); using var rv = Buf(1, 2);
        using (var y1 = Ops.BatchNorm2d(x1, null, null, rm, rv, true, momentum)) { }
        using (var y2 = Ops.BatchNorm2d(x2, null, null, rm, rv, true, momentum)) { }

        double[] em = [0, 0], ev = [1, 1];
        foreach (var x in new[] { x1, x2 })
        {
            var v = x.ToDoubleArray();
            for (int c = 0; c < 2; c++)
            {
                var vals = new List<double>();
                for (int n = 0; n < 2; n++) for (int i = 0; i < 6; i++) vals.Add(v[(n * 2 + c) * 6 + i]);
                double mu = vals.Average(), unbiased = vals.Sum(a => (a - mu) * (a - mu)) / (vals.Count - 1);
                em[c] = (1 - momentum) * em[c] + momentum * mu;
                ev[c] = (1 - momentum) * ev[c] + momentum * unbiased;
            }
        }
        Assert.That(rm.ToDoubleArray(), Is.EqualTo(em).Within(1e-12));
        Assert.That(rv.ToDoubleArray(), Is.EqualTo(ev).Within(1e-12));
    }

    [Test]
    public void RunningBuffersAreNotTracked()
    {
        using var x = Tensor.Rand([2, 2, 2, 2], new Rng(62), -1, 1, DType.Float64).RequireGrad();
        using var rm = Buf(0, 2); using var rv = Buf(1, 2);
        using var y = Ops.BatchNorm2d(x, null, null, rm, rv, true);
        Assert.That(rm.RequiresGrad || rv.RequiresGrad, Is.False);
        Assert.That(y.RequiresGrad, Is.True);
    }
}
