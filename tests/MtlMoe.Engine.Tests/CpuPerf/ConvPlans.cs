using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Conv;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>Conv plans for tests that ask an algorithm of the table whether it applies, or call a conv kernel directly.</summary>
internal static class ConvPlans
{
    /// <summary>A float32 plan of x [N, C, H, W] and w [O, C/G, kh, kw] under <paramref name="options"/> (default: the code defaults).</summary>
    public static ConvPlan Of(int[] x, int[] w, Conv2dGeometry g, CpuBackendOptions? options = null, DType dtype = DType.Float32) =>
        new(x, w, g, dtype, options ?? CpuBackendOptions.Defaults);

    /// <summary>Whether <paramref name="algorithm"/> takes <paramref name="pass"/> of the plan under the options of the current flow's CPU backend.</summary>
    public static bool Applies(IConvAlgorithm algorithm, ConvPass pass, int[] x, int[] w, Conv2dGeometry g) =>
        algorithm.Applies(new ConvPlan(x, w, g, DType.Float32, Cpu.Current), pass);
}
