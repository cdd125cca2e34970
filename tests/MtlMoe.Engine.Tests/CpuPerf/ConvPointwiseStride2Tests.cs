using System.Buffers;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Conv;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using MtlMoe.Tests.ConvNorm;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>
/// The 1×1 stride-2 conv (no padding) as GEMMs over all images' output positions — forward, backward-data with dx's
/// even/even phase interleaved with zeros, and backward-weights with K over the positions — against the float64 direct
/// convolution: 32-column slivers that span many images, lie inside one image or end part-way; rows and K that are not
/// whole slivers or span several K blocks or chunks of images; odd planes; bit-identical results across thread counts;
/// every dx element written over stale pooled buffers; and the plans it must leave to the other paths.
/// </summary>
public class ConvPointwiseStride2Tests
{
    // All three passes at every plane size: the forward would otherwise go through the phase planes (ConvImplicitTests)
    // and backward-weights through the tiled or batched unfold wherever the planes are not laid side by side.
    private static void Forced(Action body)
    {
        if (!Avx512F.IsSupported) Assert.Ignore("AVX-512 not available on this machine: the 1×1 stride-2 GEMM path does not exist here");
        Cpu.With(Cpu.Defaults.Disable("implicit-gemm-stride2") with { PointwiseStride2WeightsEverywhere = true }, body);
    }

    private static readonly Conv2dGeometry Stride2 = Conv2dGeometry.Square(2, 0);

    private static void Check(int[] xs, int[] ws, ulong seed, double tolerance = 1e-4)
    {
        Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.Forward, xs, ws, Stride2), Is.True, "the plan must take the 1×1 stride-2 GEMM");
        Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.BackwardWeights, xs, ws, Stride2), Is.True, "backward-weights too");
        ConvPassesCheck.AllPassesMatchNaive(xs, ws, Stride2, new Rng(seed), DType.Float32, tolerance, $" (x [{string.Join(", ", xs)}], w [{string.Join(", ", ws)}])");
    }

    // x [N, C, H, W], w [O, C, 1, 1]: Ho·Wo = 20 (slivers of 32 span two images, the last part-way); odd planes (5×4);
    // 1×1 input (one column per image); one column wide; 40 images of one position (a sliver holds 32 of them);
    // 70-wide rows (105 positions: whole slivers inside one image); C = 300 (two K blocks forward, 300 dx rows in
    // backward-data: 37 slivers and a half); O = 520 (three K blocks in backward-data); ResNet's 14² → 7² at 8 images.
    // Backward-weights: chunks of 256 / plane images (40 one-position images: one chunk of 40 (as 256 of them would be);
    // 105 positions: two images per chunk; 20 positions: 12), 9 and 7 output channels (a part sliver), 300 input channels
    // (ten 32-channel slivers, the last part-way); twelve chunks of one 15×15 image each, summed into part tiles (13 output
    // channels: one whole 8-row sliver and 5 rows; 20 input channels: part of one sliver).
    [TestCase(2, 5, 8, 10, 7)]
    [TestCase(3, 4, 9, 7, 6)]
    [TestCase(2, 3, 1, 1, 4)]
    [TestCase(3, 9, 13, 1, 7)]
    [TestCase(40, 3, 2, 2, 5)]
    [TestCase(2, 4, 6, 70, 3)]
    [TestCase(2, 300, 4, 4, 9)]
    [TestCase(2, 10, 6, 6, 520)]
    [TestCase(8, 32, 14, 14, 64)]
    [TestCase(12, 20, 30, 30, 13)]
    public void AllPassesMatchNaive(int n, int c, int h, int w, int o) => Forced(() => Check([n, c, h, w], [o, c, 1, 1], 61));

    [Test]
    public void RandomShapesMatchNaive() => Forced(() =>
    {
        var r = new Random(23);
        for (int it = 0; it < 30; it++)
        {
            int c = r.Next(1, 40);
            Check([r.Next(1, 6), c, r.Next(1, 20), r.Next(1, 20)], [r.Next(1, 40), c, 1, 1], (ulong)(200 + it), 2e-4);
        }
    });

    // The phase buffer and the packed A (ArrayPool) and dx (the storage pool) come back uncleared: every dx element must be
    // written — the odd rows and columns as zeros — not left as what the buffers held.
    [Test]
    public void BackwardDataIgnoresWhatPooledBuffersHeld() => Forced(() =>
    {
        int[] xs = [3, 6, 9, 11], ws = [5, 6, 1, 1];
        Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.Forward, xs, ws, Stride2), Is.True);
        using var x = Tensor.Rand(xs, new Rng(21), -1, 1).RequireGrad();
        using var w = Tensor.Rand(ws, new Rng(22), -1, 1);
        using var y = Ops.Conv2d(x, w, null, Stride2);
        using var dy = Tensor.Rand(y.Shape, new Rng(23), -1, 1);
        var stale = ArrayPool<float>.Shared.Rent(xs[0] * xs[1] * y.Shape[2] * y.Shape[3]); // the size the phase rents
        Array.Fill(stale, float.NaN);
        ArrayPool<float>.Shared.Return(stale);
        using (Tensor.Full(xs, double.NaN)) { } // back to the storage pool, ready for dx
        y.Backward(dy);
        var (edx, _) = NaiveConv.Backward(x.ToDoubleArray(), xs, w.ToDoubleArray(), ws, dy.ToDoubleArray(), Stride2);
        Assert.That(x.Grad!.ToDoubleArray(), Is.EqualTo(edx).Within(1e-4));
    });

    // 150 dx channels (19 row slivers, the last part-way) and 40 output channels over 7 images of 5×4 positions
    // (backward-weights: five 8-row slivers of dw over the items, 5 32-channel slivers, one chunk of 7 images).
    [Test]
    public void ThreadCountDoesNotChangeBits() => Forced(() =>
    {
        float[][] Run(int threads) => ConvPassesCheck.RunAtThreads(threads, [7, 150, 9, 8], [40, 150, 1, 1], padding: 0, stride: 2);
        var one = Run(1);
        foreach (int t in new[] { 2, 3, 5 })
        {
            var other = Run(t);
            Assert.That(other[0], Is.EqualTo(one[0]), $"y, {t} threads");
            Assert.That(other[1], Is.EqualTo(one[1]), $"dx, {t} threads");
            Assert.That(other[2], Is.EqualTo(one[2]), $"dw, {t} threads");
        }
    });

    // Where backward-weights takes this path by default: only output planes laid side by side (ResNet's 14² → 7²).
    [Test]
    public void BackwardWeightsOnlyWherePlanesLieSideBySide()
    {
        if (!Avx512F.IsSupported) Assert.Ignore("AVX-512 not available on this machine");
        Cpu.With(Cpu.Defaults, () =>
        {
            Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.BackwardWeights, [16, 128, 14, 14], [256, 128, 1, 1], Stride2), Is.True, "14² → 7²");
            Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.BackwardWeights, [16, 64, 28, 28], [128, 64, 1, 1], Stride2), Is.False, "28² → 14²");
            Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.BackwardWeights, [16, 256, 7, 7], [512, 256, 1, 1], Stride2), Is.False, "7² → 4²");
            Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.BackwardWeights, [1, 128, 14, 14], [256, 128, 1, 1], Stride2), Is.False, "one image");
        });
    }

    [Test]
    public void DoesNotApplyToOtherPlans() => Forced(() =>
    {
        Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 1, 1], Conv2dGeometry.Square(2, 1)), Is.False, "padding 1");
        Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 1, 1], Conv2dGeometry.Square(1, 0)), Is.False, "stride 1");
        Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.Forward, [1, 4, 9, 9], [4, 4, 1, 1], Conv2dGeometry.Square(3, 0)), Is.False, "stride 3");
        Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 1, 1], new Conv2dGeometry(2, 1, 0, 0, 1, 1, 1)), Is.False, "strides 2 and 1");
        Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 2, 1, 1], Conv2dGeometry.Square(2, 0, 1, 2)), Is.False, "groups");
        Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 3, 3], Conv2dGeometry.Square(2, 0)), Is.False, "3×3");
        Cpu.With(CpuBackendOptions.Defaults.Disable("pointwise-stride2-gemm"), () =>
            Assert.That(ConvPlans.Applies(PointwiseStride2Gemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 1, 1], Stride2), Is.False, "switched off by name (as MTLMOE_IMPLICIT=0 does)"));
    });
}
