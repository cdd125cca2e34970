using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Conv;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using MtlMoe.Tests.ConvNorm;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>
/// Every conv schedule (tiled bands, batched chunks with a partial last chunk, single-image chunks, the direct 1×1
/// path; column matrices packed for the GEMM by the unfold or plain) forced on shapes that would not normally take it,
/// forward and both backward passes, against the direct convolution in float64; plus bit-identical results across
/// thread counts and between packed and plain column matrices.
/// </summary>
public class ConvScheduleTests
{
    public enum Schedule { Tiled, TiledOneRowBands, Batched, BatchedSmallChunks, OneImagePerChunk, TiledCol2Im, BatchedCol2Im, TiledPlainColumns, BatchedPlainColumns }

    // The options of a schedule, on a backend of the test's own.
    internal static CpuBackendOptions Options(Schedule s)
    {
        // The implicit-GEMM family and the blocked backward-weights replace these schedules where they apply (ConvImplicitTests,
        // ConvPointwiseStride2Tests and ConvWeightGradTests cover them).
        var o = Cpu.Defaults.Disable("implicit-gemm", "implicit-gemm-stride2", "implicit-gemm-stride2-backward-data", "pointwise-stride2-gemm",
            "blocked-backward-weights");
        // strided 1×1 backward-data goes per image at every plane size, except when a batched schedule is under test
        if (s is not (Schedule.Tiled or Schedule.TiledOneRowBands or Schedule.TiledCol2Im or Schedule.TiledPlainColumns))
            o = o.Disable("tiled-strided-1x1-backward-data");
        return s switch
        {
            Schedule.Tiled => o with { ConvTiledMinPlane = 1, ConvTileElements = 200 },
            Schedule.TiledOneRowBands => o with { ConvTiledMinPlane = 1, ConvTileElements = 1 },
            Schedule.Batched => o with { ConvTiledMinPlane = int.MaxValue, ConvTargetCols = 1 << 20 },
            // chunks of 2 images (a partial last chunk of 1) on most shapes here
            Schedule.BatchedSmallChunks => o with { ConvTiledMinPlane = int.MaxValue, ConvTargetCols = 100 },
            // backward-data through col2im even at stride 1
            Schedule.TiledCol2Im => o.Disable("backward-data-as-forward") with { ConvTiledMinPlane = 1, ConvTileElements = 200 },
            Schedule.BatchedCol2Im => o.Disable("backward-data-as-forward") with { ConvTiledMinPlane = int.MaxValue, ConvTargetCols = 100 },
            // the unfold writes a plain column matrix and the GEMM packs it
            Schedule.TiledPlainColumns => o.Disable("im2col-packed") with { ConvTiledMinPlane = 1, ConvTileElements = 200 },
            Schedule.BatchedPlainColumns => o.Disable("im2col-packed") with { ConvTiledMinPlane = int.MaxValue, ConvTargetCols = 100 },
            _ => o with { ConvTiledMinPlane = int.MaxValue, ConvTargetCols = 1 }, // OneImagePerChunk
        };
    }

    private static void With(Schedule s, Action body) => Cpu.With(Options(s), body);

    private static IEnumerable<TestCaseData> Cases()
    {
        var shapes = new (string Name, int[] X, int[] W, Conv2dGeometry G)[]
        {
            ("3x3Pad1", [3, 5, 9, 11], [6, 5, 3, 3], Conv2dGeometry.Square(1, 1)),
            ("3x3Stride2", [3, 4, 11, 9], [5, 4, 3, 3], Conv2dGeometry.Square(2, 1)),
            ("7x7Stride2Pad3", [3, 3, 13, 15], [4, 3, 7, 7], Conv2dGeometry.Square(2, 3)),
            ("1x1Stride2", [3, 6, 9, 9], [7, 6, 1, 1], Conv2dGeometry.Square(2, 0)),
            ("1x1Direct", [3, 6, 5, 7], [7, 6, 1, 1], Conv2dGeometry.Square()),
            ("Groups2Dil2", [3, 4, 10, 11], [6, 2, 3, 3], Conv2dGeometry.Square(1, 2, 2, 2)),
            ("Groups2NonSquare", [3, 4, 9, 10], [6, 2, 3, 2], new Conv2dGeometry(1, 1, 1, 0, 1, 1, 2)),
            ("5x5Pad1", [2, 3, 9, 8], [4, 3, 5, 5], Conv2dGeometry.Square(1, 1)),
            // more than one 16 × 16 (o, c) tile of the kernel flip, partial at both edges; groups of 19 × 11 channels
            ("Wide3x3Groups", [2, 38, 5, 6], [22, 19, 3, 3], Conv2dGeometry.Square(1, 1, 1, 2)),
        };
        foreach (var s in Enum.GetValues<Schedule>())
            foreach (var (name, x, w, g) in shapes)
                yield return new TestCaseData(s, x, w, g).SetName($"{s}_{name}");
    }

    [TestCaseSource(nameof(Cases))]
    public void AllPassesMatchNaive(Schedule s, int[] xs, int[] ws, Conv2dGeometry g) =>
        With(s, () => ConvPassesCheck.AllPassesMatchNaive(xs, ws, g, new Rng(21), DType.Float64, 1e-11));

    // float32 takes the AVX-512 unfold where the machine has it; the answer is the float64 direct convolution's.
    private static IEnumerable<TestCaseData> Float32Cases() =>
        Cases().Where(c => c.Arguments[0] is Schedule.Tiled or Schedule.BatchedSmallChunks or Schedule.TiledCol2Im
                or Schedule.TiledPlainColumns or Schedule.BatchedPlainColumns)
            .Select(c => new TestCaseData(c.Arguments).SetName("Float32_" + c.TestName));

    [TestCaseSource(nameof(Float32Cases))]
    public void Float32AllPassesMatchNaive(Schedule s, int[] xs, int[] ws, Conv2dGeometry g) =>
        With(s, () => ConvPassesCheck.AllPassesMatchNaive(xs, ws, g, new Rng(22), DType.Float32, 1e-4));

    [TestCase(Schedule.Tiled)]
    [TestCase(Schedule.BatchedSmallChunks)]
    [TestCase(Schedule.Batched)]
    public void ThreadCountDoesNotChangeBits(Schedule s) => With(s, () =>
    {
        float[][] Run(int threads) => ConvPassesCheck.RunAtThreads(threads, [6, 8, 12, 10], [16, 8, 3, 3], padding: 1);
        var one = Run(1);
        var two = Run(2);
        var three = Run(3);
        for (int i = 0; i < 3; i++)
        {
            Assert.That(two[i], Is.EqualTo(one[i]), $"output {i}, 2 threads");
            Assert.That(three[i], Is.EqualTo(one[i]), $"output {i}, 3 threads");
        }
    });

    // Packing in the unfold only moves the same values to where the GEMM would have copied them: same kernel steps, same bits.
    [TestCase(Schedule.Tiled)]
    [TestCase(Schedule.BatchedSmallChunks)]
    public void PackedColumnsGiveTheSameBitsAsPlain(Schedule s) => With(s, () =>
    {
        float[][] Run(bool packed) => Cpu.With(packed ? Cpu.Current.Enable("im2col-packed") : Cpu.Current.Disable("im2col-packed"), () =>
        {
            using var x = Tensor.Rand([5, 12, 11, 13], new Rng(8), -1, 1).RequireGrad();
            using var w = Tensor.Rand([40, 12, 3, 3], new Rng(9), -1, 1).RequireGrad();
            using var y = Ops.Conv2d(x, w, padding: 1);
            using var dy = Tensor.Rand(y.Shape, new Rng(10), -1, 1);
            y.Backward(dy);
            return new[] { y.ToFloatArray(), x.Grad!.ToFloatArray(), w.Grad!.ToFloatArray() };
        });
        var packed = Run(true);
        var plain = Run(false);
        for (int i = 0; i < 3; i++) Assert.That(packed[i], Is.EqualTo(plain[i]), $"output {i}");
    });

    // The tiled backward-data takes dx uncleared from the pool and clears each image itself before col2im adds into it:
    // a pooled array of dx's length full of NaN must not leak into the gradient.
    [Test]
    public void TiledBackwardDataIgnoresWhatThePooledBufferHeld() => With(Schedule.Tiled, () =>
    {
        int[] xs = [3, 4, 11, 9], ws = [5, 4, 3, 3];
        var g = Conv2dGeometry.Square(2, 1);
        using var x = Tensor.Rand(xs, new Rng(11), -1, 1).RequireGrad();
        using var w = Tensor.Rand(ws, new Rng(12), -1, 1);
        using var y = Ops.Conv2d(x, w, null, g);
        using var dy = Tensor.Rand(y.Shape, new Rng(13), -1, 1);
        using (Tensor.Full(xs, double.NaN)) { } // back to the pool, ready for dx
        y.Backward(dy);
        var (edx, _) = NaiveConv.Backward(x.ToDoubleArray(), xs, w.ToDoubleArray(), ws, dy.ToDoubleArray(), g);
        Assert.That(x.Grad!.ToDoubleArray(), Is.EqualTo(edx).Within(1e-4));
    });
}
