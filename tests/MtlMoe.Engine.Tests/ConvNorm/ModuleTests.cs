using MtlMoe.Engine;
using MtlMoe.Engine.NN;

namespace MtlMoe.Tests.ConvNorm;

/// <summary>Conv2d, BatchNorm2d and pooling modules: names, shapes, initialisation, modes.</summary>
public class ModuleTests
{
    [Test]
    public void Conv2dParameters()
    {
        using var conv = new Conv2d(4, 6, 3, padding: 1, groups: 2, rng: new Rng(1));
        var names = conv.NamedParameters().Select(p => p.Name).ToArray();
        Assert.That(names, Is.EqualTo(new[] { "weight", "bias" }));
        Assert.That(conv.Weight.Shape, Is.EqualTo(new[] { 6, 2, 3, 3 }));
        double bound = 1 / Math.Sqrt(2 * 9);
        var w = conv.Weight.ToDoubleArray();
        Assert.That(w.All(v => Math.Abs(v) <= bound), Is.True);
        Assert.That(w.Max() - w.Min(), Is.GreaterThan(bound), "weights are spread over the init range");
        using var x = Tensor.Rand([2, 4, 5, 5], new Rng(2));
        using var y = conv.Forward(x);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 6, 5, 5 }));
    }

    [Test]
    public void Conv2dWithoutBias()
    {
        using var conv = new Conv2d(3, 8, 1, bias: false);
        Assert.That(conv.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "weight" }));
        Assert.That(conv.Bias, Is.Null);
    }

    [Test]
    public void BatchNorm2dNamesAndCounter()
    {
        using var bn = new BatchNorm2d(3);
        Assert.That(bn.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "weight", "bias" }));
        Assert.That(bn.NamedBuffers().Select(p => p.Name), Is.EqualTo(new[] { "running_mean", "running_var", "num_batches_tracked" }));
        Assert.That(bn.Weight.ToDoubleArray(), Is.EqualTo(new[] { 1.0, 1, 1 }));
        Assert.That(bn.RunningVar.ToDoubleArray(), Is.EqualTo(new[] { 1.0, 1, 1 }));
        Assert.That(bn.NumBatchesTracked.DType, Is.EqualTo(DType.Int64));
        Assert.That(bn.NumBatchesTracked.Rank, Is.EqualTo(0));

        using var x = Tensor.Rand([2, 3, 4, 4], new Rng(3), 1, 3);
        using (bn.Forward(x)) { }
        using (bn.Forward(x)) { }
        Assert.That(bn.NumBatchesTracked.Item(), Is.EqualTo(2));
        Assert.That(bn.RunningMean.ToDoubleArray().All(v => v > 0.1), Is.True, "running mean moved toward the batch mean (≈ 2)");

        bn.Eval();
        var before = bn.RunningMean.ToDoubleArray();
        using (bn.Forward(x)) { }
        Assert.That(bn.NumBatchesTracked.Item(), Is.EqualTo(2), "eval does not count");
        Assert.That(bn.RunningMean.ToDoubleArray(), Is.EqualTo(before));
    }

    [Test]
    public void NamesInsideSequential()
    {
        using var net = new Sequential(new Conv2d(3, 4, 3, bias: false), new BatchNorm2d(4), new MaxPool2d(2), new AdaptiveAvgPool2d(1));
        var names = net.StateDict().Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();
        Assert.That(names, Is.EqualTo(new[] { "0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean", "1.running_var", "1.weight" }));
        using var x = Tensor.Rand([2, 3, 8, 8], new Rng(4));
        using var y = net.Forward(x);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 4, 1, 1 }));
    }

    [Test]
    public void PoolModules()
    {
        using var x = Tensor.Rand([1, 2, 6, 6], new Rng(5));
        using var a = new AvgPool2d(3, 3).Forward(x);
        using var m = new MaxPool2d(3, 2, 1).Forward(x);
        Assert.That(a.Shape, Is.EqualTo(new[] { 1, 2, 2, 2 }));
        Assert.That(m.Shape, Is.EqualTo(new[] { 1, 2, 3, 3 }));
    }
}
