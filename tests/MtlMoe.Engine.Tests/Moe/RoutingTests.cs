using MtlMoe.Engine;
using MtlMoe.Engine.MoE;

namespace MtlMoe.Tests.Moe;

public class RoutingTests
{
    // Rows choose (1, 0), (1, 2), (0, 1) among 3 experts.
    private static Tensor Top() => Tensor.FromArray(new[] { 1, 0, 1, 2, 0, 1 }, [3, 2]);

    [Test]
    public void StablePlacementIsExpertContiguousInBatchOrder()
    {
        using var top = Top();
        using var r = MoeOps.Route(top, 3);
        Assert.That(r.Requested, Is.EqualTo(new[] { 2, 3, 1 }));
        Assert.That(r.Offsets.ToArray<int>(), Is.EqualTo(new[] { 0, 2, 5, 6 }));
        Assert.That(r.SlotOf.ToArray<int>(), Is.EqualTo(new[] { 2, 0, 3, 5, 1, 4 }));
        Assert.That(r.SourceRow.ToArray<int>(), Is.EqualTo(new[] { 0, 2, 0, 1, 2, 1 }));
        Assert.That(r.Dropped, Is.EqualTo(0));
        using var x = Tensor.FromArray(new double[] { 0, 1, 10, 11, 20, 21 }, [3, 2]);
        using var buf = MoeOps.Dispatch(x, r);
        Assert.That(buf.ToDoubleArray(), Is.EqualTo(new double[] { 0, 1, 20, 21, 0, 1, 10, 11, 20, 21, 10, 11 }));
    }

    [Test]
    public void CapacityDropsOverflowAndCountsIt()
    {
        using var top = Top();
        using var r = MoeOps.Route(top, 3, capacity: 2);
        Assert.That(r.Dropped, Is.EqualTo(1));
        Assert.That(r.Kept, Is.EqualTo(new[] { 2, 2, 1 }));
        Assert.That(r.Offsets.ToArray<int>(), Is.EqualTo(new[] { 0, 2, 4, 5 }));
        Assert.That(r.SlotOf.ToArray<int>(), Is.EqualTo(new[] { 2, 0, 3, 4, 1, -1 }), "row 2's choice of expert 1 is the third and is dropped");
    }

    [Test]
    public void CombineWeightsByGatesAndSkipsDroppedRows()
    {
        using var top = Top();
        using var r = MoeOps.Route(top, 3, capacity: 2);
        using var gates = Tensor.FromArray(new double[] { 0.3, 0.7, 0, 0, 0.6, 0.4, 0.9, 0.1, 0 }, [3, 3]);
        using var y0 = Tensor.FromArray(new double[] { 1, 2 }, [2, 1]);   // rows 0, 2
        using var y1 = Tensor.FromArray(new double[] { 10, 20 }, [2, 1]); // rows 0, 1 (row 2 dropped)
        using var y2 = Tensor.FromArray(new double[] { 100 }, [1, 1]);    // row 1
        using var outp = MoeOps.Combine([y0, y1, y2], gates, top, r);
        Assert.That(outp.ToDoubleArray(), Is.EqualTo(new[] { 0.7 * 10 + 0.3 * 1, 0.6 * 20 + 0.4 * 100, 0.9 * 2 }).Within(1e-14));
    }

    [Test]
    public void LayerWithCapacityReportsDroppedRows()
    {
        var o = new MoeOptions { NumExperts = 2, K = 1, CapacityFactor = 0.5, NoisyGating = false };
        using var layer = new MoeLayer(3, o, _ => new Engine.NN.Linear(3, 2, rng: new Rng(1)));
        layer.Eval();
        using var x = Tensor.Rand([8, 3], new Rng(2));
        using var y = layer.Forward(x);
        // W_g = 0: every row ties and goes to expert 0, whose capacity is ⌈0.5·8·1/2⌉ = 2.
        var m = layer.LastMetrics!;
        Assert.That(m.DroppedRows, Is.EqualTo(6));
        Assert.That(m.RoutedRows, Is.EqualTo(new[] { 8, 0 }));
        Assert.That(m.DeadExperts, Is.EqualTo(1));
        Assert.That(m.Load, Is.EqualTo(new[] { 2.0, 0 }));
        var yv = y.ToDoubleArray();
        Assert.That(yv.Skip(4), Is.All.EqualTo(0.0), "dropped rows contribute nothing");
    }
}
