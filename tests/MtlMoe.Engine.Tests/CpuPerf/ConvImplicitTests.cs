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
/// The AVX-512 implicit-GEMM conv (B read from x, or from x's four phase planes for 3×3 stride 2, with masked loads)
/// against the float64 direct convolution, forward and
/// both backward passes (stride-1 backward-data runs as a forward with the kernel packed flipped, so it goes through the
/// same kernel): odd chunk counts,
/// planes that are not whole 16-lane chunks, output channels that are not whole 8-row slivers or span two 128-row blocks,
/// several K blocks, other kernels, dilation and output heights; plus bit-identical results across thread counts.
/// </summary>
public class ConvImplicitTests
{
    // Runs body twice on its own backend: each image with its own chunks, then chunks laid end to end over the images
    // wherever the plane has 16+ positions (ImplicitPackedBelow above 1), so every case covers both layouts.
    private static void Forced(Action body)
    {
        if (!Avx512F.IsSupported) Assert.Ignore("AVX-512 not available on this machine: the implicit conv path does not exist here");
        foreach (double below in new[] { 0, 1.01 })
            // every stride-1 same-width float32 conv takes it
            Cpu.With(Cpu.Defaults with { ImplicitMinLaneUse = 0, ImplicitPackedBelow = below }, body);
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        var shapes = new (string Name, int[] X, int[] W, Conv2dGeometry G)[]
        {
            ("3x3Pad1Plane99", [3, 5, 9, 11], [6, 5, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("4x4OddChunkCount", [3, 7, 4, 4], [9, 7, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("TwoKBlocksRaggedRows", [2, 72, 4, 4], [20, 72, 3, 3], Conv2dGeometry.Square(1, 1)), // K blocks of 64 and 8 channels
            ("TwoRowBlocks", [1, 3, 5, 5], [136, 3, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("5x5Pad2ThreeKBlocks", [2, 47, 6, 7], [5, 47, 5, 5], Conv2dGeometry.Square(1, 2)), // 23, 23 and 1 channels
            ("3x3Dilation2", [2, 4, 9, 10], [7, 4, 3, 3], Conv2dGeometry.Square(1, 2, 2)),
            ("3x1Kernel", [2, 6, 7, 9], [8, 6, 3, 1], new Conv2dGeometry(1, 1, 1, 0, 1, 1, 1)),
            ("ShorterOutput", [2, 5, 9, 8], [8, 5, 3, 3], new Conv2dGeometry(1, 1, 0, 1, 1, 1, 1)),
            ("OneColumnWide", [3, 4, 13, 1], [5, 4, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("RowsWiderThanAChunk", [2, 3, 6, 30], [16, 3, 3, 3], Conv2dGeometry.Square(1, 1)),
        };
        foreach (var (name, x, w, g) in shapes) yield return new TestCaseData(x, w, g).SetName(name);
    }

    [TestCaseSource(nameof(Cases))]
    public void AllPassesMatchNaive(int[] xs, int[] ws, Conv2dGeometry g) => Forced(() =>
    {
        Assert.That(ConvPlans.Applies(ImplicitGemm.Instance, ConvPass.Forward, xs, ws, g), Is.True, "the forward must take the implicit path");
        ConvPassesCheck.AllPassesMatchNaive(xs, ws, g, new Rng(31), DType.Float32, 1e-4);
    });

    // 3×3 stride-2 pad-1 forward through the phase planes and backward-data as four phase GEMMs: ragged and wide rows
    // (17 outputs), a 1×1 output, odd chunk counts, two 128-row blocks (in the forward's O and in backward-data's C = 136);
    // odd planes, where the forward's odd phases end in a zero row or column (the bottom/right padding) and backward-data
    // computes the phases' last row or column, which falls outside dx, and leaves it out (7×7 is ResNet's 7² → 4² conv;
    // 1×1 and 1-wide planes; 300 dy channels: K blocks of 144, 144 and 12); backward-weights through the other paths.
    [TestCase(2, 5, 8, 10, 7)]
    [TestCase(3, 40, 14, 14, 9)]
    [TestCase(1, 3, 2, 2, 4)]
    [TestCase(2, 4, 6, 34, 12)]
    [TestCase(3, 6, 8, 8, 136)]
    [TestCase(2, 136, 6, 4, 10)]
    [TestCase(2, 5, 7, 7, 6)]
    [TestCase(3, 4, 9, 8, 5)]
    [TestCase(2, 3, 5, 11, 80)]
    [TestCase(2, 4, 1, 1, 3)]
    [TestCase(3, 9, 13, 1, 7)]
    [TestCase(2, 4, 6, 6, 300)]
    public void Stride2MatchesNaive(int n, int c, int h, int w, int o) => Forced(() =>
    {
        int[] xs = [n, c, h, w], ws = [o, c, 3, 3];
        var g = Conv2dGeometry.Square(2, 1);
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2.Instance, ConvPass.Forward, xs, ws, g), Is.True, "the forward must take the stride-2 implicit path");
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2BackwardData.Instance, ConvPass.BackwardData, xs, ws, g), Is.True, "backward-data must take the phase GEMMs");
        ConvPassesCheck.AllPassesMatchNaive(xs, ws, g, new Rng(41), DType.Float32, 1e-4);
    });

    // Stride-2 forward with other odd kernels (padding kernel/2): 7×7 and 5×5 shift taps by up to ±2 phase rows/columns,
    // so the masks cut the bottom/right edges too (7×7 on 3 channels is the ResNet stem's shape); 1×1 reads the even/even
    // phase alone (ResNet's downsampling shortcut) and 1×3 the even-row phases alone. Backward through the other paths.
    [TestCase(2, 3, 12, 12, 8, 7, 7)]
    [TestCase(3, 3, 11, 9, 5, 7, 7)]
    [TestCase(2, 5, 9, 10, 6, 5, 5)]
    [TestCase(2, 4, 7, 7, 3, 5, 5)]
    [TestCase(3, 6, 8, 8, 9, 1, 1)]
    [TestCase(2, 40, 7, 9, 20, 1, 1)]
    [TestCase(2, 5, 7, 6, 4, 1, 3)]
    public void Stride2OtherKernelsMatchNaive(int n, int c, int h, int w, int o, int kh, int kw) => Forced(() =>
    {
        int[] xs = [n, c, h, w], ws = [o, c, kh, kw];
        var g = new Conv2dGeometry(2, 2, kh / 2, kw / 2, 1, 1, 1);
        // 1×1 stays on the unfold when the images' planes are laid side by side (every plane here has 16+ outputs).
        bool applies = kh * kw > 1 || Cpu.Current.ImplicitPackedBelow == 0;
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2.Instance, ConvPass.Forward, xs, ws, g), Is.EqualTo(applies), "whether the forward takes the stride-2 implicit path");
        ConvPassesCheck.AllPassesMatchNaive(xs, ws, g, new Rng(47), DType.Float32, 2e-4);
    });

    // The phase buffer (ArrayPool) and dx (the storage pool) come back uncleared: every dx element must be written, not
    // left as what the buffers held (odd H and W: the phases' last row and column are left out of dx).
    [Test]
    public void Stride2BackwardDataIgnoresWhatPooledBuffersHeld() => Forced(() =>
    {
        int[] xs = [3, 6, 9, 11], ws = [5, 6, 3, 3];
        var g = Conv2dGeometry.Square(2, 1);
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2BackwardData.Instance, ConvPass.BackwardData, xs, ws, g), Is.True);
        using var x = Tensor.Rand(xs, new Rng(21), -1, 1).RequireGrad();
        using var w = Tensor.Rand(ws, new Rng(22), -1, 1);
        using var y = Ops.Conv2d(x, w, null, g);
        using var dy = Tensor.Rand(y.Shape, new Rng(23), -1, 1);
        var stale = ArrayPool<float>.Shared.Rent(4 * xs[0] * xs[1] * y.Shape[2] * y.Shape[3]); // the size the phases rent
        Array.Fill(stale, float.NaN);
        ArrayPool<float>.Shared.Return(stale);
        using (Tensor.Full(xs, double.NaN)) { } // back to the storage pool, ready for dx
        y.Backward(dy);
        var (edx, _) = NaiveConv.Backward(x.ToDoubleArray(), xs, w.ToDoubleArray(), ws, dy.ToDoubleArray(), g);
        Assert.That(x.Grad!.ToDoubleArray(), Is.EqualTo(edx).Within(1e-4));
    });

    // Random 3×3 stride-2 pad-1 shapes, any plane from 1×1 up: all three passes.
    [Test]
    public void Stride2RandomShapesMatchNaive() => Forced(() =>
    {
        var r = new Random(19);
        for (int it = 0; it < 25; it++)
        {
            int[] xs = [r.Next(1, 5), r.Next(1, 25), r.Next(1, 20), r.Next(1, 20)], ws = [r.Next(1, 25), xs[1], 3, 3];
            var g = Conv2dGeometry.Square(2, 1);
            Assert.That(ConvPlans.Applies(ImplicitGemmStride2.Instance, ConvPass.Forward, xs, ws, g), Is.True);
            Assert.That(ConvPlans.Applies(ImplicitGemmStride2BackwardData.Instance, ConvPass.BackwardData, xs, ws, g), Is.True);
            ConvPassesCheck.AllPassesMatchNaive(xs, ws, g, new Rng((ulong)(100 + it)), DType.Float32, 2e-4,
                $" (x [{string.Join(", ", xs)}], w [{string.Join(", ", ws)}])");
        }
    });

    // Where it does not apply, the conv goes the other ways (checked against the plan, not assumed).
    [Test]
    public void DoesNotApplyToStridedGroupedOrNarrowedConvs() => Forced(() =>
    {
        Assert.That(ConvPlans.Applies(ImplicitGemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 3, 3], Conv2dGeometry.Square(2, 1)), Is.False, "stride 2");
        Assert.That(ConvPlans.Applies(ImplicitGemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 2, 3, 3], Conv2dGeometry.Square(1, 1, 1, 2)), Is.False, "groups");
        Assert.That(ConvPlans.Applies(ImplicitGemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 3, 3], Conv2dGeometry.Square(1, 0)), Is.False, "Wo < W");
        Assert.That(ConvPlans.Applies(ImplicitGemm.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 1, 1], Conv2dGeometry.Square()), Is.False, "1×1");
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 3, 3], Conv2dGeometry.Square(2, 0)), Is.False, "stride 2, no padding");
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 5, 5], Conv2dGeometry.Square(2, 1)), Is.False, "stride 2, 5×5 with padding 1");
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 4, 4], Conv2dGeometry.Square(2, 2)), Is.False, "stride 2, even kernel");
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2.Instance, ConvPass.Forward, [1, 4, 8, 8], [4, 4, 1, 1], Conv2dGeometry.Square(2, 1)), Is.False, "stride 2, 1×1 with padding 1");
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2BackwardData.Instance, ConvPass.BackwardData, [1, 4, 8, 8], [4, 4, 3, 3], Conv2dGeometry.Square(2, 0)), Is.False, "stride-2 backward-data, no padding");
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2BackwardData.Instance, ConvPass.BackwardData, [1, 4, 8, 8], [4, 4, 1, 1], Conv2dGeometry.Square(2, 0)), Is.False, "stride-2 backward-data, 1×1");
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2BackwardData.Instance, ConvPass.BackwardData, [1, 4, 8, 8], [4, 2, 3, 3], Conv2dGeometry.Square(2, 1, 1, 2)), Is.False, "stride-2 backward-data, groups");
        Assert.That(ConvPlans.Applies(ImplicitGemmStride2BackwardData.Instance, ConvPass.BackwardData, [1, 4, 9, 9], [4, 4, 5, 5], Conv2dGeometry.Square(2, 2)), Is.False, "stride-2 backward-data, 5×5");
        Cpu.With(Cpu.Current with { ImplicitMinLaneUse = 0.7 }, () =>
        {
            Assert.That(ConvPlans.Applies(ImplicitGemm.Instance, ConvPass.Forward, [1, 4, 3, 3], [4, 4, 3, 3], Conv2dGeometry.Square(1, 1)), Is.False, "3×3 plane: 9 of 16 lanes");
            Assert.That(ConvPlans.Applies(ImplicitGemm.Instance, ConvPass.Forward, [1, 4, 7, 7], [4, 4, 3, 3], Conv2dGeometry.Square(1, 1)), Is.True, "7×7 plane: 49 of 64 lanes");
        });
    });

    [Test]
    public void ThreadCountDoesNotChangeBits() => Forced(() =>
    {
        float[][] Run(int threads) => ConvPassesCheck.RunAtThreads(threads, [5, 40, 6, 7], [140, 40, 3, 3], padding: 1);
        var one = Run(1);
        foreach (int t in new[] { 2, 3, 5 })
        {
            var other = Run(t);
            Assert.That(other[0], Is.EqualTo(one[0]), $"y, {t} threads");
            Assert.That(other[1], Is.EqualTo(one[1]), $"dx, {t} threads");
            Assert.That(other[2], Is.EqualTo(one[2]), $"dw, {t} threads");
        }
        // Stride 2 (phase-plane forward, phase GEMMs for dx) on an odd plane, with dx channels spanning two 128-row blocks.
        float[][] Run2(int threads) => ConvPassesCheck.RunAtThreads(threads, [5, 136, 11, 9], [24, 136, 3, 3], padding: 1, stride: 2);
        var one2 = Run2(1);
        foreach (int t in new[] { 2, 3, 5 })
        {
            var other = Run2(t);
            Assert.That(other[0], Is.EqualTo(one2[0]), $"stride 2: y, {t} threads");
            Assert.That(other[1], Is.EqualTo(one2[1]), $"stride 2: dx, {t} threads");
        }
    });

    // Random stride-1 same-width shapes (3×3/pad 1 and 5×5/pad 2): planes from 1×1 up, any channel counts, all three passes.
    [Test]
    public void RandomShapesMatchNaive() => Forced(() =>
    {
        var r = new Random(17);
        for (int it = 0; it < 40; it++)
        {
            int k = r.Next(2) == 0 ? 3 : 5;
            int[] xs = [r.Next(1, 5), r.Next(1, 25), r.Next(1, 19), r.Next(1, 19)], ws = [r.Next(1, 25), xs[1], k, k];
            var g = Conv2dGeometry.Square(1, k / 2);
            Assert.That(ConvPlans.Applies(ImplicitGemm.Instance, ConvPass.Forward, xs, ws, g), Is.True);
            ConvPassesCheck.AllPassesMatchNaive(xs, ws, g, new Rng((ulong)it), DType.Float32, 2e-4,
                $" (x [{string.Join(", ", xs)}], w [{string.Join(", ", ws)}])");
        }
    });
}
