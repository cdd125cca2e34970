using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Conv;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>
/// The kernel flip behind stride-1 backward-data, w′[g·Cg + c, o, i, j] = w[g·Og + o, c, kh−1−i, kw−1−j], with the
/// AVX-512 lane reversal and the scalar copy, against that formula element by element.
/// </summary>
public class KernelFlipTests
{
    // O, Cg, kh, kw, groups
    [TestCase(40, 19, 3, 3, 1)]   // 3×3: partial 16 × 16 tiles at both edges
    [TestCase(22, 11, 3, 3, 2)]   // groups
    [TestCase(17, 5, 4, 4, 1)]    // 16 taps: the widest the lanes take
    [TestCase(9, 3, 2, 1, 1)]     // 2 taps
    [TestCase(8, 4, 5, 5, 1)]     // 25 taps: scalar either way
    [TestCase(5, 3, 1, 1, 1)]     // 1 tap
    [TestCase(1, 1, 3, 3, 1)]     // a single (o, c) pair: only the scalar tail runs
    public void MatchesTheFormula(int o, int cg, int kh, int kw, int groups)
    {
        var p = ConvPlans.Of([2, cg * groups, 6, 6], [o * groups, cg, kh, kw], Conv2dGeometry.Square(1, 0, 1, groups));
        int kk = kh * kw, og = o, len = o * groups * cg * kk;
        using var wt = Tensor.Rand([len + 3], new Rng(11), -1, 1);
        var w = wt.ToFloatArray(); // the kernel starts at offset 3, as in a view
        foreach (bool vec in new[] { true, false })
        {
            var wf = new float[len];
            KernelFlip.Flip(w, 3, wf, p.WithOptions(vec ? CpuBackendOptions.Defaults : CpuBackendOptions.Defaults.Disable("kernel-flip-vec")));
            for (int g = 0; g < groups; g++)
                for (int c = 0; c < cg; c++)
                    for (int ol = 0; ol < og; ol++)
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++)
                            {
                                float got = wf[(((g * cg + c) * og + ol) * kh + i) * kw + j];
                                float want = w[3 + (((g * og + ol) * cg + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
                                if (got != want) Assert.Fail($"vec={vec} g={g} c={c} o={ol} tap ({i}, {j}): {got}, expected {want}");
                            }
        }
    }
}
