using System.Diagnostics;
using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine.Backends.Cpu.Conv.Shared;

/// <summary>
/// With the op profile on (MTLMOE_PROFILE=1), each conv call is charged to a per-shape key ("conv bwd-data 3x3/s2
/// 64→128 56²") and its parts (unfold, GEMM, regroup, fold, kernel flip, an algorithm as a whole) to their own keys.
/// Off, every hook is one bool test.
/// </summary>
internal static class ConvProfile
{
    /// <summary>A timestamp to pass to <see cref="Since"/>, or 0 when the profile is off.</summary>
    public static long Start() => OpProfile.Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Charges the time since <paramref name="t0"/> (from <see cref="Start"/>; 0 when the profile is off) to <paramref name="key"/>.</summary>
    public static void Since(string key, long t0)
    {
        if (t0 != 0) OpProfile.Add(key, Stopwatch.GetTimestamp() - t0);
    }

    /// <summary>Charges a whole conv call to its phase and shape, e.g. "  conv bwd-data 3x3/s2 64→128 56²".</summary>
    public static void Call(string phase, long t0, int[] xShape, int[] wShape, Conv2dGeometry g)
    {
        if (t0 != 0) Since($"  conv {phase} {wShape[2]}x{wShape[3]}/s{g.StrideH} {xShape[1]}→{wShape[0]} {xShape[2]}²", t0);
    }
}
