using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Tests.ConvNorm;

/// <summary>conv2d forward against a direct convolution on random inputs.</summary>
public class ConvForwardTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        // x shape, w shape, geometry
        yield return new TestCaseData(new[] { 2, 3, 9, 9 }, new[] { 4, 3, 3, 3 }, Conv2dGeometry.Square()).SetName("Conv3x3");
        yield return new TestCaseData(new[] { 2, 3, 9, 8 }, new[] { 4, 3, 3, 3 }, Conv2dGeometry.Square(2, 1)).SetName("Conv3x3Stride2Pad1");
        yield return new TestCaseData(new[] { 1, 4, 10, 11 }, new[] { 6, 2, 3, 3 }, Conv2dGeometry.Square(1, 2, 2, 2)).SetName("Conv3x3Dil2Groups2");
        yield return new TestCaseData(new[] { 3, 5, 6, 7 }, new[] { 8, 5, 1, 1 }, Conv2dGeometry.Square()).SetName("Conv1x1");
        yield return new TestCaseData(new[] { 2, 3, 13, 13 }, new[] { 4, 3, 7, 7 }, Conv2dGeometry.Square(2, 3)).SetName("Conv7x7Stride2Pad3");
        yield return new TestCaseData(new[] { 2, 4, 7, 9 }, new[] { 4, 1, 3, 2 }, new Conv2dGeometry(2, 3, 1, 0, 1, 2, 4)).SetName("DepthwiseNonSquare");
        yield return new TestCaseData(new[] { 4, 8, 12, 12 }, new[] { 8, 8, 3, 3 }, Conv2dGeometry.Square(1, 1)).SetName("ImagesInParallel");
        yield return new TestCaseData(new[] { 2, 16, 24, 24 }, new[] { 32, 16, 3, 3 }, Conv2dGeometry.Square(1, 1)).SetName("ImagesInSequenceParallelGemm");
        yield return new TestCaseData(new[] { 2, 64, 24, 24 }, new[] { 64, 64, 1, 1 }, Conv2dGeometry.Square()).SetName("Direct1x1ParallelGemm");
    }

    [TestCaseSource(nameof(Cases))]
    public void BackwardMatchesNaive(int[] xs, int[] ws, Conv2dGeometry g)
    {
        var rng = new Rng(11);
        using var x = Tensor.Rand(xs, rng, -1, 1, DType.Float64).RequireGrad();
        using var w = Tensor.Rand(ws, rng, -1, 1, DType.Float64).RequireGrad();
        using var y = Ops.Conv2d(x, w, null, g);
        using var dy = Tensor.Rand(y.Shape, rng, -1, 1, DType.Float64);
        y.Backward(dy);
        var (edx, edw) = NaiveConv.Backward(x.ToDoubleArray(), xs, w.ToDoubleArray(), ws, dy.ToDoubleArray(), g);
        Assert.That(x.Grad!.ToDoubleArray(), Is.EqualTo(edx).Within(1e-10), "dx");
        Assert.That(w.Grad!.ToDoubleArray(), Is.EqualTo(edw).Within(1e-10), "dw");
        x.ZeroGrad(); w.ZeroGrad();
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesNaive(int[] xs, int[] ws, Conv2dGeometry g)
    {
        var rng = new Rng(7);
        var xv = Enumerable.Range(0, xs.Aggregate(1, (a, b) => a * b)).Select(_ => rng.Uniform(-1, 1)).ToArray();
        var wv = Enumerable.Range(0, ws.Aggregate(1, (a, b) => a * b)).Select(_ => rng.Uniform(-1, 1)).ToArray();
        var bv = Enumerable.Range(0, ws[0]).Select(_ => rng.Uniform(-1, 1)).ToArray();
        var expect = NaiveConv.Forward(xv, xs, wv, ws, bv, g, out var ys);
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            using var x0 = Tensor.FromArray(xv, xs); using var x = x0.To(dtype);
            using var w0 = Tensor.FromArray(wv, ws); using var w = w0.To(dtype);
            using var b0 = Tensor.FromArray(bv, [ws[0]]); using var b = b0.To(dtype);
            using var y = Ops.Conv2d(x, w, b, g);
            Assert.That(y.Shape, Is.EqualTo(ys));
            Assert.That(y.ToDoubleArray(), Is.EqualTo(expect).Within(dtype == DType.Float64 ? 1e-12 : 1e-4), dtype.Name());
        }
    }

    [Test]
    public void NonContiguousInputMatchesNaive()
    {
        // x stored as [N, H, C, W] and viewed as [N, C, H, W].
        using var stored = Tensor.Rand([2, 6, 3, 5], new Rng(3), -1, 1, DType.Float64);
        using var x = stored.Permute(0, 2, 1, 3);
        using var w = Tensor.Rand([4, 3, 3, 3], new Rng(4), -1, 1, DType.Float64);
        Assert.That(x.IsContiguous, Is.False);
        var g = Conv2dGeometry.Square(2, 1);
        var expect = NaiveConv.Forward(x.ToDoubleArray(), x.Shape, w.ToDoubleArray(), w.Shape, null, g, out var ys);
        using var y = Ops.Conv2d(x, w, null, g);
        Assert.That(y.Shape, Is.EqualTo(ys));
        Assert.That(y.ToDoubleArray(), Is.EqualTo(expect).Within(1e-12));
    }

    [Test]
    public void BackwardIsDeterministic()
    {
        double[] Run()
        {
            using var x = Tensor.Rand([4, 8, 10, 10], new Rng(5), -1, 1).RequireGrad();
            using var w = Tensor.Rand([8, 8, 3, 3], new Rng(6), -1, 1).RequireGrad();
            using var y = Ops.Conv2d(x, w, padding: 1);
            using var s = Ops.Sum(y);
            s.Backward();
            var r = x.Grad!.ToDoubleArray().Concat(w.Grad!.ToDoubleArray()).ToArray();
            x.ZeroGrad(); w.ZeroGrad();
            return r;
        }
        var first = Run();
        var second = Run();
        Assert.That(second, Is.EqualTo(first));
    }

    [Test]
    public void SingleThreadMatchesMultiThreadForward()
    {
        using var x = Tensor.Rand([4, 8, 10, 10], new Rng(8), -1, 1);
        using var w = Tensor.Rand([8, 8, 3, 3], new Rng(9), -1, 1);
        var y1 = Cpu.With(Cpu.Defaults with { Threads = 1 }, () => { using var y = Ops.Conv2d(x, w, padding: 1); return y.ToFloatArray(); });
        var y2 = Cpu.With(Cpu.Defaults with { Threads = Math.Max(2, Environment.ProcessorCount) }, () => { using var y = Ops.Conv2d(x, w, padding: 1); return y.ToFloatArray(); });
        Assert.That(y2, Is.EqualTo(y1));
    }
}
