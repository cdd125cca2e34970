using MtlMoe.Engine;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.IndexLoss;

public class IndexTests
{
    [Test]
    public void TopKValuesGrad()
    {
        GradCheck.Assert("topk", x => Ops.TopK(x[0], 3, 1).Values, GradCheck.Rand([4, 6], 401));
        GradCheck.Assert("topk smallest dim0 non-contiguous", x => Ops.TopK(x[0].T, 2, 0, largest: false).Values, GradCheck.Rand([3, 5], 402));
    }

    [Test]
    public void GatherGrad()
    {
        using var idx = Tensor.FromArray(new long[] { 2, 0, 2, 1, 1, 1 }, [3, 2]);
        GradCheck.Assert("gather", x => Ops.Gather(x[0], 1, idx), GradCheck.Rand([3, 4], 403));
        using var idx0 = Tensor.FromArray(new[] { 1, 0, 1 }, [1, 3]); // int32, smaller than x in dim 1
        GradCheck.Assert("gather dim0 non-contiguous", x => Ops.Gather(x[0].T, 0, idx0), GradCheck.Rand([4, 2], 404));
    }

    [Test]
    public void ScatterAddGradSrcAndX()
    {
        using var idx = Tensor.FromArray(new long[] { 0, 2, 0, 1, 1, 1 }, [2, 3]);
        GradCheck.Assert("scatter_add", x => Ops.ScatterAdd(x[0], 1, idx, x[1]), GradCheck.Rand([2, 4], 405), GradCheck.Rand([2, 3], 406));
        // src larger than the index (its extra entries get zero gradient), dim 0, non-contiguous src.
        using var idx0 = Tensor.FromArray(new long[] { 2, 0, 2 }, [1, 3]);
        GradCheck.Assert("scatter_add dim0", x => Ops.ScatterAdd(x[0], 0, idx0, x[1].T), GradCheck.Rand([3, 3], 407), GradCheck.Rand([3, 2], 408));
    }

    [Test]
    public void IndexSelectGradWithRepeats()
    {
        using var idx = Tensor.FromArray(new long[] { 2, 0, 2, 2 });
        GradCheck.Assert("index_select", x => Ops.IndexSelect(x[0], 1, idx), GradCheck.Rand([2, 3, 2], 409));
        GradCheck.Assert("index_select dim0 non-contiguous", x => Ops.IndexSelect(x[0].T, 0, idx), GradCheck.Rand([2, 3], 410));
    }

    [Test]
    public void TopKTiesPickLowerIndexAndSort()
    {
        using var x = Tensor.FromArray(new double[] { 1, 3, 3, 2, 3 });
        var (v, i) = Ops.TopK(x, 2);
        Assert.That(v.ToDoubleArray(), Is.EqualTo(new double[] { 3, 3 }));
        Assert.That(i.DType, Is.EqualTo(DType.Int64));
        Assert.That(i.ToArray<long>(), Is.EqualTo(new long[] { 1, 2 }));
        var (sv, si) = Ops.TopK(x, 3, largest: false);
        Assert.That(sv.ToDoubleArray(), Is.EqualTo(new double[] { 1, 2, 3 }));
        Assert.That(si.ToArray<long>(), Is.EqualTo(new long[] { 0, 3, 1 }));
    }

    [Test]
    public void TopKWithKEqualToSizeSortsWholeDim()
    {
        using var x = Tensor.FromArray(new float[] { 0.5f, -1, 2, 2, 7, 0 }, [2, 3]);
        using var xt = x.T; // [3, 2], non-contiguous
        var (v, i) = Ops.TopK(xt, 3, 0);
        Assert.That(v.Shape, Is.EqualTo(new[] { 3, 2 }));
        // Columns of xt: [0.5, -1, 2] and [2, 7, 0].
        Assert.That(v.ToDoubleArray(), Is.EqualTo(new double[] { 2, 7, 0.5, 2, -1, 0 }));
        Assert.That(i.ToArray<long>(), Is.EqualTo(new long[] { 2, 1, 0, 0, 1, 2 }));
    }

    [Test]
    public void TopKIndicesCarryNoGradient()
    {
        using var x = GradCheck.Rand([5], 411).RequireGrad();
        var (v, i) = Ops.TopK(x, 2);
        Assert.That(v.RequiresGrad, Is.True);
        Assert.That(i.RequiresGrad, Is.False);
    }

    [Test]
    public void GatherScatterAddIndexSelectForward()
    {
        using var x = Tensor.FromArray(new double[] { 10, 11, 12, 20, 21, 22 }, [2, 3]);
        using var gi = Tensor.FromArray(new long[] { 2, 2, 0, 1 }, [2, 2]);
        Assert.That(Ops.Gather(x, 1, gi).ToDoubleArray(), Is.EqualTo(new double[] { 12, 12, 20, 21 }));
        using var src = Tensor.FromArray(new double[] { 1, 2, 3, 4 }, [2, 2]);
        Assert.That(Ops.ScatterAdd(x, 1, gi, src).ToDoubleArray(), Is.EqualTo(new double[] { 10, 11, 15, 23, 25, 22 }));
        using var si = Tensor.FromArray(new[] { 1, 1, 0 });
        var s = Ops.IndexSelect(x, 0, si);
        Assert.That(s.Shape, Is.EqualTo(new[] { 3, 3 }));
        Assert.That(s.ToDoubleArray(), Is.EqualTo(new double[] { 20, 21, 22, 20, 21, 22, 10, 11, 12 }));
        using var ci = Tensor.FromArray(new long[] { 2, 0 });
        Assert.That(Ops.IndexSelect(x, -1, ci).ToDoubleArray(), Is.EqualTo(new double[] { 12, 10, 22, 20 }));
    }

    [Test]
    public void OneHotForward()
    {
        using var labels = Tensor.FromArray(new long[] { 2, 0, 1, 2 }, [2, 2]);
        var o = Ops.OneHot(labels, 3);
        Assert.That(o.Shape, Is.EqualTo(new[] { 2, 2, 3 }));
        Assert.That(o.DType, Is.EqualTo(DType.Float32));
        Assert.That(o.ToDoubleArray(), Is.EqualTo(new double[] { 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1 }));
        using var l32 = Tensor.FromArray(new[] { 1 });
        Assert.That(Ops.OneHot(l32, 2, DType.Float64).ToDoubleArray(), Is.EqualTo(new double[] { 0, 1 }));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.OneHot(labels, 2));
        Assert.That(e!.Message, Does.Contain("one_hot").And.Contain("label 2").And.Contain("2 classes").And.Contain("[2, 2]"));
    }

    [Test]
    public void IndexOutOfBoundsNamesOpAndShapes()
    {
        using var x = Tensor.Zeros([2, 3]);
        using var bad = Tensor.FromArray(new long[] { 0, 3 }, [2, 1]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Gather(x, 1, bad));
        Assert.That(e!.Message, Does.Contain("gather").And.Contain("index 3").And.Contain("[2, 3]").And.Contain("[2, 1]"));
        using var src = Tensor.Zeros([2, 1]);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.ScatterAdd(x, 1, bad, src));
        Assert.That(e!.Message, Does.Contain("scatter_add").And.Contain("[2, 3]"));
        using var neg = Tensor.FromArray(new long[] { -1 });
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.IndexSelect(x, 0, neg));
        Assert.That(e!.Message, Does.Contain("index_select").And.Contain("-1").And.Contain("[2, 3]"));
        using var big = Tensor.Zeros([3, 1], DType.Int64);
        var s = Assert.Throws<ShapeException>(() => Ops.Gather(x, 1, big));
        Assert.That(s!.Message, Does.Contain("gather").And.Contain("[3, 1]"));
        using var fidx = Tensor.Zeros([2, 1]);
        Assert.Throws<ArgumentException>(() => Ops.Gather(x, 1, fidx));
    }

    [Test]
    public void TopKWithKLargerThanSizeNamesOpAndShape()
    {
        using var x = Tensor.Zeros([2, 3]);
        var e = Assert.Throws<ShapeException>(() => Ops.TopK(x, 4));
        Assert.That(e!.Message, Does.Contain("topk").And.Contain("k = 4").And.Contain("[2, 3]"));
    }
}
