using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Gemm;
using MtlMoe.Engine.Backends.Cpu.Conv;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using MtlMoe.Tests.Gemm;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>
/// The unfold into the GEMM's packed-B layout against the plain unfold packed by the layout's formula, bit for bit:
/// several images, bands of output rows, row subsets, short KC blocks, the vector unfolds on and off, row groups in the buffer.
/// </summary>
public class Im2ColPackedTests
{
    // x [N, C, H, W] (one group), kernel, stride, padding
    [TestCase(2, 3, 9, 11, 3, 1, 1)]
    [TestCase(3, 4, 11, 9, 3, 2, 1)]
    [TestCase(2, 3, 13, 15, 7, 2, 3)]
    [TestCase(1, 6, 9, 9, 1, 2, 0)]
    [TestCase(4, 5, 4, 4, 3, 1, 1)]     // a 4×4 plane: columns per row far below one buffer
    [TestCase(1, 2, 40, 90, 3, 1, 1)]   // 3,600 columns: one row per buffer fill
    [TestCase(3, 3, 6, 8, 3, 1, 1)]     // stride 1, same width, bands of whole 16-lane chunks: masked loads straight into slivers
    [TestCase(1, 2, 6, 28, 3, 1, 1)]    // 28 wide: the full plane (168) is not whole chunks, the inner band (112) is
    public void MatchesPlainUnfoldPackedByFormula(int n, int c, int h, int w, int kernel, int stride, int pad)
    {
        var p = ConvPlans.Of([n, c, h, w], [5, c, kernel, kernel], Conv2dGeometry.Square(stride, pad));
        var x = Input(p, 4);
        ForEachVariant(p, x, (p, vec, layout, ohLo, ohHi, plain, cols) =>
        {
            var expect = GemmPackedTests.PackByFormula(plain, cols, p.K, cols, layout);
            foreach (var (rowLo, rowHi) in new[] { (0, p.K), (1, Math.Max(1, p.K - 2)) })
            {
                var packed = new float[layout.Length(p.K, cols)];
                packed.AsSpan().Fill(42f); // rows outside [rowLo, rowHi) stay 42
                Im2ColPacked.Unfold(x, 7, c * h * w, n, p, layout, packed, rowLo, rowHi, ohLo, ohHi);
                for (int r = 0; r < p.K; r++)
                {
                    long start = layout.RowStart(r, p.K, cols, out int kc);
                    for (int q = 0; q < layout.PaddedCols(cols); q++)
                    {
                        long at = start + (long)(q / layout.NR) * layout.NR * kc + q % layout.NR;
                        float want = r >= rowLo && r < rowHi ? expect[at] : 42f;
                        if (packed[at] != want)
                            Assert.Fail($"vec={vec} NR={layout.NR} KC={layout.KC} oh [{ohLo}, {ohHi}) rows [{rowLo}, {rowHi}): " +
                                $"row {r} column {q} is {packed[at]}, expected {want}");
                    }
                }
            }
        });
    }

    // Backward-weights reads colᵀ [nb·B, K]: the transposed unfold against the plain one, transposed and packed by formula.
    [TestCase(2, 3, 9, 11, 3, 1, 1)]
    [TestCase(3, 4, 11, 9, 3, 2, 1)]
    [TestCase(4, 5, 4, 4, 3, 1, 1)]     // K = 45: a partial last sliver at NR = 32
    [TestCase(1, 40, 3, 30, 1, 1, 0)]   // K = 40, 90 columns
    [TestCase(2, 4, 23, 23, 3, 1, 1)]   // 1,058 columns: several KC = 256 blocks of positions
    public void TransposedMatchesPlainUnfoldTransposedAndPacked(int n, int c, int h, int w, int kernel, int stride, int pad)
    {
        var p = ConvPlans.Of([n, c, h, w], [5, c, kernel, kernel], Conv2dGeometry.Square(stride, pad));
        var x = Input(p, 5);
        ForEachVariant(p, x, (p, vec, layout, ohLo, ohHi, plain, cols) =>
        {
            int slivers = layout.PaddedCols(p.K) / layout.NR;
            var colT = new float[cols * p.K]; // colᵀ [cols, K]
            for (int r = 0; r < p.K; r++)
                for (int q = 0; q < cols; q++) colT[q * p.K + r] = plain[r * cols + q];
            var expect = GemmPackedTests.PackByFormula(colT, p.K, cols, p.K, layout);
            var packed = new float[layout.Length(cols, p.K)];
            packed.AsSpan().Fill(42f);
            // two calls over disjoint sliver ranges, as two threads would make them
            Im2ColPacked.UnfoldTransposed(x, 7, c * h * w, n, p, layout, packed, 0, slivers / 2, ohLo, ohHi);
            Im2ColPacked.UnfoldTransposed(x, 7, c * h * w, n, p, layout, packed, slivers / 2, slivers, ohLo, ohHi);
            Assert.That(packed, Is.EqualTo(expect), $"vec={vec} NR={layout.NR} KC={layout.KC} oh [{ohLo}, {ohHi})");
        });
    }

    // x [N, C, H, W] of random values at offset 7 of its array.
    private static float[] Input(in ConvPlan p, ulong seed)
    {
        using var xt = Tensor.Rand([p.N * p.C * p.H * p.W + 7], new Rng(seed), -1, 1);
        return xt.ToFloatArray();
    }

    // body(plan, vec, layout, ohLo, ohHi, plain, cols) with the vector unfolds on and off (in the plan's options) × an AVX-512 and a small scalar layout ×
    // the whole plane and an inner band of output rows; plain is the plain unfold [K, cols] of x (from Input) for that band.
    private static void ForEachVariant(ConvPlan plan, float[] x, Action<ConvPlan, bool, GemmPackedLayout, int, int, float[], int> body)
    {
        foreach (bool vec in new[] { true, false })
        {
            var p = plan.WithOptions(vec ? CpuBackendOptions.Defaults : CpuBackendOptions.Defaults.Disable("im2col-vec", "im2col-same-vec"));
            foreach (var layout in new[] { new GemmPackedLayout(GemmPath.Avx512, 32, 256), new GemmPackedLayout(GemmPath.Scalar, 4, 5) })
                foreach (var (ohLo, ohHi) in new[] { (0, p.Ho), (1, Math.Max(1, p.Ho - 1)) })
                {
                    int cols = p.N * (ohHi - ohLo) * p.Wo;
                    var plain = new float[p.K * cols];
                    Im2Col.Unfold(x, 7, p.C * p.H * p.W, p.N, p, plain, cols, 0, p.K, ohLo, ohHi);
                    body(p, vec, layout, ohLo, ohHi, plain, cols);
                }
        }
    }
}
