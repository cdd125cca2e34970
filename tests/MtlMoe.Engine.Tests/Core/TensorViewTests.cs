using MtlMoe.Engine;

namespace MtlMoe.Tests.Core;

public class TensorViewTests
{
    private static Tensor Seq(params int[] shape)
    {
        var n = Shapes.Count(shape);
        var d = new float[n];
        for (int i = 0; i < n; i++) d[i] = i;
        return Tensor.FromArray(d, shape);
    }

    [Test]
    public void TransposeIsAViewAndContiguousCopies()
    {
        using var x = Seq(2, 3);
        using var t = x.T;
        Assert.That(t.Storage, Is.SameAs(x.Storage));
        Assert.That(t.IsContiguous, Is.False);
        Assert.That(t.ToArray<float>(), Is.EqualTo(new float[] { 0, 3, 1, 4, 2, 5 }));
        using var c = t.Contiguous();
        Assert.That(c.IsContiguous, Is.True);
        Assert.That(c.Storage, Is.Not.SameAs(x.Storage));
    }

    [Test]
    public void NarrowSelectSqueezeUnsqueeze()
    {
        using var x = Seq(3, 4);
        using var n = x.Narrow(1, 1, 2);
        Assert.That(n.Shape, Is.EqualTo(new[] { 3, 2 }));
        Assert.That(n.ToArray<float>(), Is.EqualTo(new float[] { 1, 2, 5, 6, 9, 10 }));
        using var s = x.Select(0, -1);
        Assert.That(s.ToArray<float>(), Is.EqualTo(new float[] { 8, 9, 10, 11 }));
        using var u = s.Unsqueeze(0);
        Assert.That(u.Shape, Is.EqualTo(new[] { 1, 4 }));
        using var q = u.Squeeze();
        Assert.That(q.Shape, Is.EqualTo(new[] { 4 }));
    }

    [Test]
    public void ReshapeInfersAndRejects()
    {
        using var x = Seq(2, 3, 4);
        using var r = x.Reshape(-1, 4);
        Assert.That(r.Shape, Is.EqualTo(new[] { 6, 4 }));
        var ex = Assert.Throws<ShapeException>(() => x.Reshape(5, -1));
        Assert.That(ex!.Message, Does.Contain("[2, 3, 4]"));
        using var p = x.Permute(2, 0, 1);
        using var pr = p.Reshape(4, 6);
        Assert.That(pr.ToArray<float>()[..6], Is.EqualTo(new float[] { 0, 4, 8, 12, 16, 20 }));
    }

    [Test]
    public void ExpandBroadcastsWithStrideZero()
    {
        using var x = Seq(3, 1);
        using var e = x.Expand(2, 3, 4);
        Assert.That(e.Layout.Strides, Is.EqualTo(new[] { 0, 1, 0 }));
        Assert.That(e.ToArray<float>()[..8], Is.EqualTo(new float[] { 0, 0, 0, 0, 1, 1, 1, 1 }));
        Assert.Throws<ShapeException>(() => x.Expand(2, 2).Dispose());
    }

    [Test]
    public void BroadcastingAddMatchesHandValues()
    {
        using var a = Seq(2, 1, 3);
        using var b = Seq(4, 1);
        using var c = a + b;
        Assert.That(c.Shape, Is.EqualTo(new[] { 2, 4, 3 }));
        var v = c.ToArray<float>();
        Assert.That(v[0], Is.EqualTo(0f)); Assert.That(v[3 * 3 + 2], Is.EqualTo(5f)); Assert.That(v[12 + 3 + 1], Is.EqualTo(5f));
        var ex = Assert.Throws<ShapeException>(() => (Seq(2, 3) + Seq(4, 3)).Dispose());
        Assert.That(ex!.Message, Does.Contain("add").And.Contain("[2, 3]").And.Contain("[4, 3]"));
    }

    [Test]
    public void MatMulShapeErrorNamesShapes()
    {
        using var a = Seq(2, 3); using var b = Seq(4, 5);
        var ex = Assert.Throws<ShapeException>(() => Ops.MatMul(a, b));
        Assert.That(ex!.Message, Does.Contain("matmul").And.Contain("[2, 3]").And.Contain("[4, 5]"));
    }

    [Test]
    public void MatMulMatchesHandValuesWithTransposedOperands()
    {
        using var a = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, [2, 3]);
        using var b = Tensor.FromArray(new float[] { 1, 0, 0, 1, 1, 1 }, [3, 2]);
        using var c = Ops.MatMul(a, b);
        Assert.That(c.ToArray<float>(), Is.EqualTo(new float[] { 4, 5, 10, 11 }));
        using var at = Tensor.FromArray(new float[] { 1, 4, 2, 5, 3, 6 }, [3, 2]);
        using var att = at.T;
        using var c2 = Ops.MatMul(att, b);
        Assert.That(c2.ToArray<float>(), Is.EqualTo(new float[] { 4, 5, 10, 11 }));
    }

    [Test]
    public void ReductionsWithNegativeDimsAndKeepDim()
    {
        using var x = Seq(2, 3);
        using var s = Ops.Sum(x, [-1], keepDim: true);
        Assert.That(s.Shape, Is.EqualTo(new[] { 2, 1 }));
        Assert.That(s.ToArray<float>(), Is.EqualTo(new float[] { 3, 12 }));
        using var m = Ops.Max(x, [0]);
        Assert.That(m.ToArray<float>(), Is.EqualTo(new float[] { 3, 4, 5 }));
        using var am = Ops.ArgMax(x, 1);
        Assert.That(am.ToArray<long>(), Is.EqualTo(new long[] { 2, 2 }));
        using var v = Ops.Var(x, [1]);
        Assert.That(v.ToArray<float>(), Is.EqualTo(new float[] { 2f / 3, 2f / 3 }).Within(1e-6));
        using var all = Ops.Mean(x);
        Assert.That(all.Item(), Is.EqualTo(2.5).Within(1e-6));
    }

    [Test]
    public void SecondBackwardThroughFreedGraphIsAClearError()
    {
        using var x = Tensor.FromArray(new double[] { 1, 2 }).RequireGrad();
        using var y = Ops.Mul(x, x);
        using var l = Ops.Sum(y);
        l.Backward();
        var ex = Assert.Throws<InvalidOperationException>(() => l.Backward());
        Assert.That(ex!.Message, Does.Contain("second time"));
        Assert.That(x.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 2, 4 }));
        x.ZeroGrad();
    }

    [Test]
    public void GradientsAccumulateAcrossBackwardCalls()
    {
        using var x = Tensor.FromArray(new double[] { 3 }).RequireGrad();
        for (int i = 0; i < 2; i++)
        {
            using var y = Ops.Mul(x, x);
            y.Backward(Tensor.FromArray(new double[] { 1 }));
        }
        Assert.That(x.Grad!.ToArray<double>()[0], Is.EqualTo(12));
        x.ZeroGrad();
    }

    [Test]
    public void NoGradScopeRecordsNothing()
    {
        using var x = Tensor.FromArray(new double[] { 1 }).RequireGrad();
        using (MtlMoe.Engine.Autograd.GradMode.NoGrad())
        {
            using var y = Ops.Exp(x);
            Assert.That(y.RequiresGrad, Is.False);
            Assert.That(y.GradFn, Is.Null);
        }
        using var z = Ops.Exp(x);
        Assert.That(z.RequiresGrad, Is.True);
        using var d = z.Detach();
        Assert.That(d.RequiresGrad, Is.False);
    }

    // Serial: it compares the process-wide live-tensor counters (MemoryStats) before and after, which parallel tests move.
    [Test, NonParallelizable]
    public void DisposeScopeFreesTemporaries()
    {
        long tensors = MemoryStats.LiveTensors, bytes = MemoryStats.LiveBytes;
        using var keep = Tensor.Zeros([4]);
        Tensor kept;
        using (var scope = DisposeScope.Begin())
        {
            using var a = Tensor.Ones([1000]);
            var b = a * 2.0;
            var c = b + a;
            kept = (c * 3.0).DetachFromScope();
            Assert.That(scope.Count, Is.GreaterThan(0));
        }
        Assert.That(kept.ToArray<float>()[0], Is.EqualTo(9f));
        kept.Dispose();
        Assert.That(MemoryStats.LiveTensors, Is.EqualTo(tensors + 1));
        Assert.That(MemoryStats.LiveBytes, Is.EqualTo(bytes + 16));
    }

    // Serial: it compares the process-wide live-tensor counters (MemoryStats) before and after, which parallel tests move.
    [Test, NonParallelizable]
    public void RandomTensorsLeaveNoStagingTensorBehind()
    {
        long tensors = MemoryStats.LiveTensors, bytes = MemoryStats.LiveBytes;
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            Tensor.RandN([64, 32], new Rng(1), dtype).Dispose();
            Tensor.Rand([64, 32], new Rng(2), dtype: dtype).Dispose();
        }
        Assert.That(MemoryStats.LiveTensors, Is.EqualTo(tensors));
        Assert.That(MemoryStats.LiveBytes, Is.EqualTo(bytes));
    }

    [Test]
    public void UseAfterDisposeIsAClearError()
    {
        var x = Tensor.Zeros([2]);
        x.Dispose();
        Assert.Throws<ObjectDisposedException>(() => x.ToArray<float>());
    }

    [Test]
    public void AbsentCudaDeviceIsAClearError()
    {
        var ex = Assert.Throws<DeviceUnavailableException>(() => Tensor.Zeros([2], device: Device.Cuda(0)));
        Assert.That(ex!.Message, Does.Contain("cuda:0"));
    }
}
