using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Conv;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>
/// The AVX-512 float32 im2cols (column stride 2; stride 1 with same-width rows) against the scalar one, bit for bit,
/// over kernels, padding, dilation, bands and leading dimensions.
/// </summary>
public class Im2ColVecTests
{
    // x [N, C, H, W] (one group of Cg = C), w [O, C, kh, kw]
    [TestCase(3, 4, 9, 11, 3, 3, 1, 1, 1, 1, 1)]
    [TestCase(2, 3, 13, 15, 7, 7, 2, 2, 3, 3, 1)]
    [TestCase(3, 5, 11, 9, 3, 3, 2, 2, 1, 1, 1)]
    [TestCase(2, 6, 9, 9, 1, 1, 2, 2, 0, 0, 1)]
    [TestCase(2, 2, 7, 40, 3, 3, 1, 1, 1, 1, 1)]   // stride 1: the scalar unfold either way
    [TestCase(2, 2, 7, 81, 3, 3, 2, 2, 1, 1, 1)]   // Wo = 41: two full 16-lane steps and a partial one
    [TestCase(3, 2, 8, 13, 3, 3, 2, 2, 1, 1, 1)]   // Wo = 7 < 16: one store spans several segments
    [TestCase(2, 2, 9, 70, 5, 3, 2, 2, 2, 1, 1)]   // stride 2, Wo = 35
    [TestCase(2, 3, 10, 11, 3, 3, 1, 1, 2, 2, 2)]  // dilation 2
    [TestCase(2, 3, 9, 12, 3, 2, 1, 2, 1, 0, 1)]   // stride (1, 2), non-square kernel
    [TestCase(1, 2, 12, 12, 3, 3, 3, 3, 1, 1, 1)]  // stride 3: not vectorised, same answer
    [TestCase(2, 3, 4, 4, 3, 3, 1, 1, 1, 1, 1)]    // a 4×4 plane (ResNet layer 4): stride 1, same width, one chunk per image
    [TestCase(3, 2, 7, 7, 3, 3, 1, 1, 1, 1, 1)]    // 7×7: chunks cross output rows and image ends
    [TestCase(2, 2, 14, 14, 5, 5, 1, 1, 2, 2, 1)]  // 5×5, pad 2
    [TestCase(2, 2, 9, 16, 3, 3, 1, 1, 2, 2, 2)]   // dilation 2, 16 wide (the widest the same-width path takes)
    [TestCase(2, 3, 6, 5, 3, 1, 1, 1, 1, 0, 1)]    // 3×1 kernel, width 5
    [TestCase(2, 3, 8, 9, 3, 3, 1, 1, 0, 1, 1)]    // no padding along the height: Ho = H − 2, Wo = W
    [TestCase(2, 2, 9, 1, 3, 1, 1, 1, 1, 0, 1)]    // one column wide
    [TestCase(2, 2, 5, 17, 3, 3, 1, 1, 1, 1, 1)]   // 17 wide: the scalar unfold either way
    public void VectorUnfoldMatchesScalar(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int dil)
    {
        var geo = new Conv2dGeometry(sh, sw, ph, pw, dil, dil, 1);
        var p = ConvPlans.Of([n, c, h, w], [5, c, kh, kw], geo);
        var rng = new Rng(3);
        // an offset into a larger array, as a view of a bigger storage would have
        using var xt = Tensor.Rand([n * c * h * w + 7], rng, -1, 1);
        var x = xt.ToFloatArray();
        foreach (var (ohLo, ohHi) in new[] { (0, p.Ho), (1, Math.Max(1, p.Ho - 1)) })
            foreach (int rowLo in new[] { 0, 1 })
            {
                int plane = (ohHi - ohLo) * p.Wo, ld = n * plane + 3, rowHi = p.K - (p.K > 2 ? 1 : 0);
                float[] Run(bool vector)
                {
                    var plan = p.WithOptions(vector ? CpuBackendOptions.Defaults : CpuBackendOptions.Defaults.Disable("im2col-vec", "im2col-same-vec"));
                    var col = new float[p.K * ld + 5];
                    col.AsSpan().Fill(42f); // untouched entries stay 42 in both
                    Im2Col.Unfold(x, 7, c * h * w, n, plan, col, ld, rowLo, rowHi, ohLo, ohHi);
                    return col;
                }
                Assert.That(Run(true), Is.EqualTo(Run(false)), $"oh [{ohLo}, {ohHi}), rows [{rowLo}, {rowHi})");
            }
    }
}
