using System.Diagnostics;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Bench;

/// <summary>
/// In-process A/B of the CPU backend's paths (<c>--ab NAME</c>): runs alternate between two backends of this process,
/// one with the workload's options and one with the path switched off, so both sides see the same machine load at a
/// fine grain; the medians of each side are reported. A NAME is any path of <see cref="CpuBackendOptions.Paths"/> (the
/// conv algorithm table's rows and the kernels' fast paths), or one of the names earlier builds used (<see cref="Aliases"/>).
/// </summary>
public static class AbKnobs
{
    private static readonly string[] ImplicitFamily = ["implicit-gemm", "implicit-gemm-stride2", "implicit-gemm-stride2-backward-data", "pointwise-stride2-gemm"];

    /// <summary>The names earlier builds' <c>--ab</c> took, with what each switches off now (1:1 where a path has the same meaning).</summary>
    public static readonly IReadOnlyDictionary<string, (string Meaning, Func<CpuBackendOptions, CpuBackendOptions> Off)> Aliases =
        new Dictionary<string, (string, Func<CpuBackendOptions, CpuBackendOptions>)>(StringComparer.Ordinal)
        {
            ["unfold"] = ("im2col-vec", o => o.Disable("im2col-vec")),
            ["same"] = ("im2col-same-vec", o => o.Disable("im2col-same-vec")),
            ["packb"] = ("im2col-packed", o => o.Disable("im2col-packed")),
            ["flip"] = ("kernel-flip-vec", o => o.Disable("kernel-flip-vec")),
            ["fold"] = ("col2im-vec", o => o.Disable("col2im-vec")),
            ["blocks"] = ("gemm-packed-blocks-alone", o => o.Disable("gemm-packed-blocks-alone")),
            ["team"] = ("worker-team (the A/B understates it: the helpers fall asleep during each run without them)", o => o.Disable("worker-team")),
            ["implicit2"] = ("implicit-gemm-stride2", o => o.Disable("implicit-gemm-stride2")),
            ["implicit2bd"] = ("implicit-gemm-stride2-backward-data", o => o.Disable("implicit-gemm-stride2-backward-data")),
            ["pointwise2"] = ("pointwise-stride2-gemm", o => o.Disable("pointwise-stride2-gemm")),
            ["packed"] = ("implicit-packed-chunks", o => o.Disable("implicit-packed-chunks")),
            ["strided1x1"] = ("tiled-strided-1x1-backward-data", o => o.Disable("tiled-strided-1x1-backward-data")),
            ["weightgrad"] = ("blocked-backward-weights", o => o.Disable("blocked-backward-weights")),
            ["maxpool"] = ("maxpool-vec", o => o.Disable("maxpool-vec")),
            ["tail"] = ("bn-add-relu-fused", o => o.Disable("bn-add-relu-fused")),
            ["bnstats"] = ("bn-stats-one-pass", o => o.Disable("bn-stats-one-pass")),
            ["implicit"] = ("the implicit-GEMM family: " + string.Join(", ", ImplicitFamily), o => o.Disable(ImplicitFamily)),
            ["tiled"] = ("tiled bands for large planes only (ConvTiledMinPlane = ∞; strided 1×1 backward-data stays per image)",
                o => o with { ConvTiledMinPlane = int.MaxValue }),
            ["all"] = ("every fast path but the schedule choices (tiled-bands, implicit-packed-chunks, backward-data-as-forward, vector-elementwise)",
                o => o.Disable([.. CpuBackendOptions.Paths.Select(p => p.Name)
                    .Where(n => n is not ("tiled-bands" or "implicit-packed-chunks" or "backward-data-as-forward" or "vector-elementwise"))])),
        };

    /// <summary>Every name <c>--ab</c> accepts: the paths, then the earlier names.</summary>
    public static IEnumerable<string> Names => CpuBackendOptions.Paths.Select(p => p.Name).Concat(Aliases.Keys);

    /// <summary>The help lines: one per name and what it switches off.</summary>
    public static IEnumerable<string> Help() =>
        CpuBackendOptions.Paths.Select(p => $"  {p.Name,-36} {(p.ConvAlgorithm ? "conv algorithm: " : "")}{p.Summary}")
            .Concat(Aliases.Select(a => $"  {a.Key,-36} (earlier name) {a.Value.Meaning}"));

    /// <summary><paramref name="baseline"/> with <paramref name="knob"/> switched off; an unknown name lists the known ones.</summary>
    public static CpuBackendOptions Off(string knob, CpuBackendOptions baseline)
    {
        if (Aliases.TryGetValue(knob, out var alias)) return alias.Off(baseline);
        if (CpuBackendOptions.Paths.Any(p => p.Name == knob)) return baseline.Disable(knob);
        throw new ArgumentException($"--ab: unknown name '{knob}' (one of {string.Join(", ", Names)})");
    }

    /// <summary>
    /// Median ms without and with <paramref name="knob"/>, over <paramref name="runs"/> alternating pairs (after one warm-up
    /// each). Each run has its side's backend installed for this flow and gets that side's options (for bodies that call
    /// the CPU kernels directly).
    /// </summary>
    public static (double Off, double On) MedianMs(string knob, CpuBackendOptions baseline, Action<CpuBackendOptions> body, int runs)
    {
        runs = Math.Max(runs, 5);
        CpuBackendOptions onOptions = baseline, offOptions = Off(knob, baseline);
        var onBackend = new CpuBackend(onOptions);
        var offBackend = new CpuBackend(offOptions);
        double Time(bool on)
        {
            using var _ = BackendRegistry.Use(on ? onBackend : offBackend);
            var sw = Stopwatch.StartNew();
            body(on ? onOptions : offOptions);
            return sw.Elapsed.TotalMilliseconds;
        }
        Time(false); Time(true);
        var off = new double[runs]; var on = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            // Alternate which side goes first, so neither always follows the other.
            for (int side = 0; side < 2; side++)
            {
                bool isOn = (side == 0) == (i % 2 == 0);
                (isOn ? on : off)[i] = Time(isOn);
            }
        }
        Array.Sort(off); Array.Sort(on);
        return (Median(off), Median(on));
    }

    private static double Median(double[] s) => s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
}
