using System.Diagnostics;

namespace MtlMoe.Engine.Autograd;

/// <summary>
/// Opt-in per-op wall-time profile (environment variable MTLMOE_PROFILE=1): forward time is the time since the
/// previous recorded op (so un-recorded work in between is charged to the next op), backward time is each
/// node's backward closure, optimizer steps are timed as a whole. A table of key → total ms is printed on
/// stderr at process exit. When disabled every hook is one static bool test.
/// </summary>
public static class OpProfile
{
    /// <summary>Whether profiling is on: MTLMOE_PROFILE=1, read once at start-up (<see cref="EnvironmentVariables"/>).</summary>
    public static bool Enabled { get; } = EnvironmentVariables.ProfileOn;

    private static readonly Dictionary<string, (long Ticks, long Calls)> Totals = new(StringComparer.Ordinal);
    private static long _mark;
    private static bool _hooked;

    /// <summary>Starts a new interval now (the next <see cref="Lap"/> measures from here).</summary>
    public static void Mark() { if (Enabled) _mark = Stopwatch.GetTimestamp(); }

    /// <summary>Charges the time since the last mark to <paramref name="key"/> and marks again.</summary>
    public static void Lap(string key)
    {
        if (!Enabled) return;
        long now = Stopwatch.GetTimestamp();
        if (_mark != 0) Add(key, now - _mark);
        _mark = now;
    }

    /// <summary>Adds <paramref name="ticks"/> (Stopwatch ticks) to <paramref name="key"/>.</summary>
    public static void Add(string key, long ticks)
    {
        lock (Totals)
        {
            if (!_hooked) { _hooked = true; AppDomain.CurrentDomain.ProcessExit += (_, _) => Print(Console.Error); }
            Totals.TryGetValue(key, out var v);
            Totals[key] = (v.Ticks + ticks, v.Calls + 1);
        }
    }

    /// <summary>Clears the totals.</summary>
    public static void Reset() { lock (Totals) Totals.Clear(); _mark = 0; }

    /// <summary>Writes the table, largest total first.</summary>
    public static void Print(TextWriter w)
    {
        lock (Totals)
        {
            if (Totals.Count == 0) return;
            double all = 0;
            foreach (var v in Totals.Values) all += v.Ticks;
            w.WriteLine($"{"op",-28} {"total ms",10} {"calls",8} {"%",6}");
            foreach (var (k, v) in Totals.OrderByDescending(kv => kv.Value.Ticks))
                w.WriteLine($"{k,-28} {v.Ticks * 1000.0 / Stopwatch.Frequency,10:F1} {v.Calls,8} {100.0 * v.Ticks / all,6:F1}");
        }
    }
}
