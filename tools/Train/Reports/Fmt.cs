using System.Globalization;

namespace MtlMoe.Train.Reports;

/// <summary>Invariant-culture number formatting shared by the reports and the progress display.</summary>
public static class Fmt
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>A fraction in [0, 1] as a percentage with one decimal ("83.4%"); "–" for NaN.</summary>
    public static string Pct(double fraction) => double.IsNaN(fraction) ? "–" : (fraction * 100).ToString("0.0", Inv) + "%";

    /// <summary>A number with <paramref name="decimals"/> decimals; "–" for NaN.</summary>
    public static string Num(double value, int decimals = 3) => double.IsNaN(value) ? "–" : value.ToString("F" + decimals, Inv);

    /// <summary>A learning rate in short scientific-or-plain form ("0.01", "2.5e-4").</summary>
    public static string Lr(double lr) => double.IsNaN(lr) ? "–" : lr >= 1e-3 || lr == 0 ? lr.ToString("0.####", Inv) : lr.ToString("0.##e0", Inv);

    /// <summary>Seconds as "12.3s", "4m05s" or "1h02m".</summary>
    public static string Duration(double seconds)
    {
        if (double.IsNaN(seconds) || double.IsInfinity(seconds) || seconds < 0) return "–";
        if (seconds < 60) return seconds.ToString("0.0", Inv) + "s";
        var t = TimeSpan.FromSeconds(seconds);
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{(int)t.TotalMinutes}m{t.Seconds:00}s";
    }

    /// <summary>Per-expert loads, compact: "0.98/1.02/1.10/0.90" (≤ 8 experts) or "min 0.51 max 1.73" (more).</summary>
    public static string Loads(double[] loads)
    {
        if (loads.Length == 0) return "–";
        if (loads.Length <= 8) return string.Join("/", loads.Select(l => l.ToString("0.00", Inv)));
        return $"min {loads.Min().ToString("0.00", Inv)} max {loads.Max().ToString("0.00", Inv)}";
    }

    /// <summary>Escapes text for a markdown table cell (pipes, newlines).</summary>
    public static string Cell(string text) => text.Replace("|", "\\|").Replace("\r", " ").Replace("\n", " ");
}
