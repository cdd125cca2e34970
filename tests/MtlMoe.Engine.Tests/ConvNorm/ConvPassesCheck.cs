using MtlMoe.Engine;
using MtlMoe.Engine.Backends;

namespace MtlMoe.Tests.ConvNorm;

/// <summary>One conv through forward, backward-data and backward-weights against <see cref="NaiveConv"/> in float64.</summary>
internal static class ConvPassesCheck
{
    /// <summary>
    /// Random x (handed over non-contiguous: stored [N, H, C, W], viewed as [N, C, H, W]), w and dy from
    /// <paramref name="rng"/>; y, dx and dw must match the direct convolution within <paramref name="tolerance"/>.
    /// </summary>
    public static void AllPassesMatchNaive(int[] xs, int[] ws, Conv2dGeometry g, Rng rng, DType dtype, double tolerance, string what = "")
    {
        using var stored = Tensor.Rand([xs[0], xs[2], xs[1], xs[3]], rng, -1, 1, dtype);
        using var x = stored.Permute(0, 2, 1, 3).RequireGrad();
        using var w = Tensor.Rand(ws, rng, -1, 1, dtype).RequireGrad();
        using var y = Ops.Conv2d(x, w, null, g);
        var expect = NaiveConv.Forward(x.ToDoubleArray(), xs, w.ToDoubleArray(), ws, null, g, out var ys);
        Assert.That(y.Shape, Is.EqualTo(ys), "y shape" + what);
        Assert.That(y.ToDoubleArray(), Is.EqualTo(expect).Within(tolerance), "y" + what);
        using var dy = Tensor.Rand(y.Shape, rng, -1, 1, dtype);
        y.Backward(dy);
        var (edx, edw) = NaiveConv.Backward(x.ToDoubleArray(), xs, w.ToDoubleArray(), ws, dy.ToDoubleArray(), g);
        Assert.That(x.Grad!.ToDoubleArray(), Is.EqualTo(edx).Within(tolerance), "dx" + what);
        Assert.That(w.Grad!.ToDoubleArray(), Is.EqualTo(edw).Within(tolerance), "dw" + what);
    }

    /// <summary>
    /// y, dx and dw of a float32 3×3-style conv (seeds 5, 6, 7) computed with <paramref name="threads"/> CPU threads (the
    /// current flow's CPU options otherwise).
    /// </summary>
    public static float[][] RunAtThreads(int threads, int[] xs, int[] ws, int padding, int stride = 1) =>
        Cpu.With(Cpu.Current with { Threads = threads }, () =>
        {
            using var x = Tensor.Rand(xs, new Rng(5), -1, 1).RequireGrad();
            using var w = Tensor.Rand(ws, new Rng(6), -1, 1).RequireGrad();
            using var y = Ops.Conv2d(x, w, stride: stride, padding: padding);
            using var dy = Tensor.Rand(y.Shape, new Rng(7), -1, 1);
            y.Backward(dy);
            return new[] { y.ToFloatArray(), x.Grad!.ToFloatArray(), w.Grad!.ToFloatArray() };
        });
}
