using MtlMoe.Engine;
using MtlMoe.Engine.Backends;

namespace MtlMoe.Tests.ConvNorm;

/// <summary>Bad shapes raise a ShapeException naming the op and the shapes.</summary>
public class ShapeErrorTests
{
    private static void Throws(Action a, params string[] parts)
    {
        var e = Assert.Throws<ShapeException>(() => a())!;
        foreach (var p in parts) Assert.That(e.Message, Does.Contain(p));
    }

    [Test]
    public void ConvChannelMismatch()
    {
        using var x = Tensor.Zeros([2, 3, 8, 8]); using var w = Tensor.Zeros([4, 5, 3, 3]);
        Throws(() => Ops.Conv2d(x, w), "conv2d", "[2, 3, 8, 8]", "[4, 5, 3, 3]", "3 channels");
    }

    [Test]
    public void ConvRanks()
    {
        using var x = Tensor.Zeros([3, 8, 8]); using var w = Tensor.Zeros([4, 3, 3, 3]); using var w3 = Tensor.Zeros([4, 3, 3]); using var x4 = Tensor.Zeros([1, 3, 8, 8]);
        Throws(() => Ops.Conv2d(x, w), "conv2d", "[3, 8, 8]");
        Throws(() => Ops.Conv2d(x4, w3), "conv2d", "[4, 3, 3]");
    }

    [Test]
    public void ConvGroupsMustDivide()
    {
        using var x = Tensor.Zeros([1, 4, 8, 8]); using var w = Tensor.Zeros([3, 2, 3, 3]);
        Throws(() => Ops.Conv2d(x, w, groups: 2), "conv2d", "groups", "[1, 4, 8, 8]", "[3, 2, 3, 3]");
    }

    [Test]
    public void ConvBiasMismatch()
    {
        using var x = Tensor.Zeros([1, 3, 8, 8]); using var w = Tensor.Zeros([4, 3, 3, 3]); using var b = Tensor.Zeros([5]);
        Throws(() => Ops.Conv2d(x, w, b), "conv2d", "bias [5]", "[4, 3, 3, 3]");
    }

    [Test]
    public void ConvKernelLargerThanInput()
    {
        using var x = Tensor.Zeros([1, 3, 2, 8]); using var w = Tensor.Zeros([4, 3, 3, 3]);
        Throws(() => Ops.Conv2d(x, w), "conv2d", "[1, 3, 2, 8]", "[4, 3, 3, 3]");
        Throws(() => Ops.Conv2d(x, w, null, new Conv2dGeometry(StrideH: 0)), "conv2d", "[1, 3, 2, 8]");
    }

    [Test]
    public void PoolErrors()
    {
        using var x = Tensor.Zeros([1, 3, 2, 2]); using var x3 = Tensor.Zeros([3, 4, 4]);
        Throws(() => Ops.MaxPool2d(x, 3), "max_pool2d", "[1, 3, 2, 2]");
        Throws(() => Ops.AvgPool2d(x3, 2), "avg_pool2d", "[3, 4, 4]");
        Throws(() => Ops.MaxPool2d(x, 2, 1, 2), "max_pool2d", "padding", "[1, 3, 2, 2]");
        Throws(() => Ops.AdaptiveAvgPool2d(x3, 1, 1), "adaptive_avg_pool2d", "[3, 4, 4]");
        Throws(() => Ops.AdaptiveAvgPool2d(x, 0, 1), "adaptive_avg_pool2d", "[1, 3, 2, 2]");
    }

    [Test]
    public void BatchNormErrors()
    {
        using var x = Tensor.Zeros([2, 3, 4, 4]); using var c3 = Tensor.Zeros([3]); using var c4 = Tensor.Zeros([4]);
        Throws(() => Ops.BatchNorm2d(x, c4, null, c3, c3, true), "batch_norm2d", "weight [4]", "[2, 3, 4, 4]");
        Throws(() => Ops.BatchNorm2d(x, null, null, c3, c4, false), "batch_norm2d", "running_var [4]", "[2, 3, 4, 4]");
        using var one = Tensor.Zeros([1, 3, 1, 1]);
        Throws(() => Ops.BatchNorm2d(one, null, null, c3, c3, true), "batch_norm2d", "[1, 3, 1, 1]");
        using var x3 = Tensor.Zeros([2, 3, 4]);
        Throws(() => Ops.BatchNorm2d(x3, null, null, c3, c3, true), "batch_norm2d", "[2, 3, 4]");
    }
}
