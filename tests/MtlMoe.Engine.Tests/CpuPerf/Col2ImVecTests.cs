using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Conv;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>The AVX-512 float32 col2im (column stride 2) against the scalar fold, bit for bit.</summary>
public class Col2ImVecTests
{
    // dx [N, C, H, W] (one group of Cg = C), w [O, C, kh, kw]
    [TestCase(2, 3, 13, 15, 7, 7, 2, 2, 3, 3, 1)]
    [TestCase(3, 5, 11, 9, 3, 3, 2, 2, 1, 1, 1)]
    [TestCase(2, 6, 9, 9, 1, 1, 2, 2, 0, 0, 1)]
    [TestCase(2, 2, 7, 81, 3, 3, 2, 2, 1, 1, 1)]   // Wo = 41: two full 16-lane steps and a tail
    [TestCase(2, 2, 7, 66, 1, 1, 2, 2, 0, 0, 1)]   // Wo = 33 = 2·16 + 1
    [TestCase(2, 2, 5, 64, 3, 3, 2, 2, 1, 1, 1)]   // Wo = 32: the last block goes scalar (the strict bound)
    [TestCase(2, 2, 9, 70, 5, 3, 2, 2, 2, 1, 1)]   // Wo = 35, kernel 5×3
    [TestCase(2, 3, 9, 74, 3, 2, 1, 2, 1, 0, 2)]   // stride (1, 2), dilation 2
    [TestCase(2, 2, 7, 40, 3, 3, 1, 1, 1, 1, 1)]   // stride 1: not vectorised, same answer
    public void VectorFoldMatchesScalar(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int dil)
    {
        var geo = new Conv2dGeometry(sh, sw, ph, pw, dil, dil, 1);
        var p = ConvPlans.Of([n, c, h, w], [5, c, kh, kw], geo);
        var rng = new Rng(8);
        foreach (var (ohLo, ohHi) in new[] { (0, p.Ho), (1, Math.Max(1, p.Ho - 1)) })
        {
            int plane = (ohHi - ohLo) * p.Wo, ld = n * plane + 3;
            using var colT = Tensor.Rand([p.K * ld + 5], rng, -1, 1);
            using var dxT = Tensor.Rand([n * c * h * w + 9], rng, -1, 1);
            var col = colT.ToFloatArray();
            var dx0 = dxT.ToFloatArray();
            for (int i = 0; i < dx0.Length; i += 5) dx0[i] = -0f; // a −0 the odd lanes must keep
            float[] Run(bool vector)
            {
                var plan = p.WithOptions(vector ? CpuBackendOptions.Defaults : CpuBackendOptions.Defaults.Disable("col2im-vec"));
                var dx = (float[])dx0.Clone();
                Im2Col.Fold(col, ld, plan, dx, 9, c * h * w, 0, n * c, ohLo, ohHi);
                return dx;
            }
            var v = Run(true); var s = Run(false);
            Assert.That(v.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(s.Select(BitConverter.SingleToInt32Bits)), $"oh [{ohLo}, {ohHi})");
            Assert.That(v, Is.Not.EqualTo(dx0), "the fold changed dx");
        }
    }
}
