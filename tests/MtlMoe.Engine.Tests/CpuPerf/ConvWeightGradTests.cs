using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Conv;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using MtlMoe.Tests.ConvNorm;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>
/// The blocked backward-weights of 3×3 stride-1/stride-2 convs and the 7×7 stride-2 stem (x copied to padded planes, dy to
/// 32-channel slivers, a 9-tap or 7-tap × 32 register tile over the output positions) against the float64 direct
/// convolution: planes that are not whole vectors, output channels that are not whole slivers, odd channel counts, blocks
/// of several images, of several rows and ragged last blocks; bit-identical results across thread counts; the same weights
/// as the unfold path it replaces; and the plans it must leave to the others.
/// </summary>
public class ConvWeightGradTests
{
    private static void Forced(Action body)
    {
        if (!Avx512F.IsSupported) Assert.Ignore("AVX-512 not available on this machine: the blocked backward-weights does not exist here");
        Cpu.With(Cpu.Defaults with { BlockedWeightsMinOutPlane = 1 }, body); // every plane size, down to 1×1
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        var shapes = new (string Name, int[] X, int[] W, Conv2dGeometry G)[]
        {
            ("Plane7x7ManyImagesPerBlock", [6, 8, 7, 7], [5, 8, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("RaggedRowBlocks", [2, 16, 23, 20], [40, 16, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("TwoSliversAndAPart", [3, 24, 9, 11], [70, 24, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("OddChannelCounts", [2, 3, 6, 5], [33, 3, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("OneByOnePlane", [5, 16, 1, 1], [12, 16, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("OneColumnWide", [3, 5, 13, 1], [64, 5, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("WideRows", [1, 8, 3, 300], [4, 8, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("Stride2EvenPlane", [3, 16, 14, 14], [40, 16, 3, 3], Conv2dGeometry.Square(2, 1)),
            ("Stride2OddPlane", [4, 5, 7, 9], [33, 5, 3, 3], Conv2dGeometry.Square(2, 1)),
            ("Stride2RaggedRowBlocks", [2, 8, 31, 33], [8, 8, 3, 3], Conv2dGeometry.Square(2, 1)),
            ("Stride2OneByOneInput", [3, 4, 1, 1], [6, 4, 3, 3], Conv2dGeometry.Square(2, 1)),
            ("Stem7x7Stride2", [2, 3, 23, 20], [40, 3, 7, 7], Conv2dGeometry.Square(2, 3)),
            ("Stem7x7Stride2RowBlocks", [1, 2, 64, 50], [64, 2, 7, 7], Conv2dGeometry.Square(2, 3)),
            ("Stem7x7Stride2TinyInput", [4, 3, 2, 3], [5, 3, 7, 7], Conv2dGeometry.Square(2, 3)),
        };
        foreach (var (name, x, w, g) in shapes) yield return new TestCaseData(x, w, g).SetName(name);
    }

    [TestCaseSource(nameof(Cases))]
    public void AllPassesMatchNaive(int[] xs, int[] ws, Conv2dGeometry g) => Forced(() =>
    {
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, xs, ws, g), Is.True, "backward-weights must take the blocked path");
        ConvPassesCheck.AllPassesMatchNaive(xs, ws, g, new Rng(53), DType.Float32, 2e-4);
    });

    // Random 3×3/pad-1 shapes, stride 1 or 2: any channel counts, planes from 1×1 up.
    [Test]
    public void RandomShapesMatchNaive() => Forced(() =>
    {
        var r = new Random(29);
        for (int it = 0; it < 30; it++)
        {
            int[] xs = [r.Next(1, 5), r.Next(1, 30), r.Next(1, 21), r.Next(1, 21)], ws = [r.Next(1, 70), xs[1], 3, 3];
            var g = Conv2dGeometry.Square(1 + it % 2, 1);
            Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, xs, ws, g), Is.True);
            ConvPassesCheck.AllPassesMatchNaive(xs, ws, g, new Rng((ulong)(200 + it)), DType.Float32, 2e-4,
                $" (x [{string.Join(", ", xs)}], w [{string.Join(", ", ws)}])");
        }
    });

    // Every weight is summed by one item in the same order whichever thread runs it.
    [Test]
    public void ThreadCountsGiveIdenticalWeights() => Forced(() =>
    {
        int[] xs = [3, 64, 14, 14], ws = [96, 64, 3, 3];
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, xs, ws, Conv2dGeometry.Square(1, 1)), Is.True);
        var one = ConvPassesCheck.RunAtThreads(1, xs, ws, padding: 1);
        var one2 = ConvPassesCheck.RunAtThreads(1, xs, ws, padding: 1, stride: 2);
        int[] stemX = [2, 3, 30, 30], stemW = [64, 3, 7, 7];
        var stem = ConvPassesCheck.RunAtThreads(1, stemX, stemW, padding: 3, stride: 2);
        foreach (int t in new[] { 2, 3, 5 })
        {
            Assert.That(ConvPassesCheck.RunAtThreads(t, xs, ws, padding: 1)[2], Is.EqualTo(one[2]), $"dw, {t} threads");
            Assert.That(ConvPassesCheck.RunAtThreads(t, xs, ws, padding: 1, stride: 2)[2], Is.EqualTo(one2[2]), $"stride 2: dw, {t} threads");
            Assert.That(ConvPassesCheck.RunAtThreads(t, stemX, stemW, padding: 3, stride: 2)[2], Is.EqualTo(stem[2]), $"7×7 stem: dw, {t} threads");
        }
    });

    // Same weights as the path it replaces (the transposed unfold into the GEMM), within float32 rounding.
    [Test]
    public void MatchesTheUnfoldPath()
    {
        int[] xs = [4, 32, 28, 28], ws = [64, 32, 3, 3];
        float[] Run(bool on) => Cpu.With(on ? Cpu.Defaults : Cpu.Defaults.Disable("blocked-backward-weights"), () =>
        {
            Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, xs, ws, Conv2dGeometry.Square(1, 1)), Is.EqualTo(on), "which path runs");
            return ConvPassesCheck.RunAtThreads(2, xs, ws, padding: 1)[2];
        });
        if (!Avx512F.IsSupported) Assert.Ignore("AVX-512 not available on this machine: the blocked backward-weights does not exist here");
        var blocked = Run(true); var unfold = Run(false);
        for (int i = 0; i < blocked.Length; i++)
            Assert.That(blocked[i], Is.EqualTo(unfold[i]).Within(1e-3 + 1e-4 * Math.Abs(unfold[i])), $"dw[{i}]");
    }

    [Test]
    public void LeavesOtherPlansToTheOtherPaths() => Forced(() =>
    {
        Cpu.With(Cpu.Defaults, () =>
        {
            Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [16, 512, 4, 4], [512, 512, 3, 3], Conv2dGeometry.Square(1, 1)), Is.False, "4² output plane");
            Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [16, 256, 7, 7], [512, 256, 3, 3], Conv2dGeometry.Square(2, 1)), Is.False, "7² → 4²");
            Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [16, 256, 7, 7], [256, 256, 3, 3], Conv2dGeometry.Square(1, 1)), Is.True, "7² output plane");
        });
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [2, 16, 8, 8], [8, 16, 5, 5], Conv2dGeometry.Square(1, 2)), Is.False, "5×5");
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [2, 16, 8, 8], [8, 16, 7, 7], Conv2dGeometry.Square(1, 3)), Is.False, "7×7 stride 1");
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [2, 16, 8, 8], [8, 16, 1, 1], Conv2dGeometry.Square(1, 0)), Is.False, "1×1");
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [2, 16, 8, 8], [8, 16, 3, 3], Conv2dGeometry.Square(3, 1)), Is.False, "stride 3");
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [2, 16, 33, 32], [8, 16, 3, 3], Conv2dGeometry.Square(2, 1)), Is.False, "stride 2, plane over 32²");
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [2, 16, 8, 8], [8, 16, 3, 3], new Conv2dGeometry(1, 2, 1, 1)), Is.False, "strides 1 and 2");
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [2, 16, 8, 8], [8, 16, 3, 3], Conv2dGeometry.Square(1, 2, 2)), Is.False, "dilation 2");
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [2, 16, 8, 8], [8, 16, 3, 3], Conv2dGeometry.Square(1, 0)), Is.False, "no padding");
        Assert.That(ConvPlans.Applies(BlockedBackwardWeights.Instance, ConvPass.BackwardWeights, [2, 16, 8, 8], [8, 8, 3, 3], new Conv2dGeometry(1, 1, 1, 1, 1, 1, 2)), Is.False, "groups");
    });
}
