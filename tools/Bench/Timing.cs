using System.Diagnostics;

namespace MtlMoe.Bench;

/// <summary>Median wall time of repeated runs after warm-up.</summary>
public static class Timing
{
    /// <summary>Runs <paramref name="body"/> <paramref name="warmup"/> times untimed, then <paramref name="runs"/> (≥ 5) timed; returns the median in ms.</summary>
    public static double MedianMs(Action body, int warmup = 2, int runs = 5)
    {
        runs = Math.Max(runs, 5);
        for (int i = 0; i < warmup; i++) body();
        var times = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            body();
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return runs % 2 == 1 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
    }

    /// <summary>Rounds for JSON output.</summary>
    public static double R(double v, int digits = 3) => Math.Round(v, digits);
}
