using System.Globalization;
using System.Text;
using MtlMoe.Model.Training;

namespace MtlMoe.Train.Reports;

/// <summary>Mean and sample standard deviation of a few values (sd is NaN for one value).</summary>
public readonly record struct MeanSd(double Mean, double Sd, int N)
{
    /// <summary>Over <paramref name="values"/> (NaNs skipped).</summary>
    public static MeanSd Of(IEnumerable<double> values)
    {
        var v = values.Where(x => !double.IsNaN(x)).ToList();
        if (v.Count == 0) return new(double.NaN, double.NaN, 0);
        double mean = v.Average();
        double sd = v.Count > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1)) : double.NaN;
        return new(mean, sd, v.Count);
    }

    /// <summary>
    /// Paired t statistic of a mean difference: mean / (sd / √n); NaN below two pairs or when every difference is the
    /// same (an sd at rounding level, e.g. 0.0267 and 0.0267 + 1e-17, would otherwise give t ≈ 1e15).
    /// </summary>
    public double T => N > 1 && !AllEqual ? Mean / (Sd / Math.Sqrt(N)) : double.NaN;

    /// <summary>Whether the values agree to rounding (sd below 1e-12 of their scale), so no t-test is possible.</summary>
    public bool AllEqual => N > 1 && !(Sd > 1e-12 * Math.Max(1, Math.Abs(Mean)));
}

/// <summary>
/// The multi-seed ablation (ablate --seeds N): per variant the mean ± standard deviation over seeds, and the paired
/// differences against mtl-moe — per seed, variant minus mtl-moe on the same seed (same data order, same initial
/// backbone) — with their mean ± sd and paired t, because one seed cannot show that one variant beats another.
/// </summary>
public static class AblationSeeds
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The variant the others are compared with.</summary>
    public const string Reference = "mtl-moe";

    /// <summary>"74.1% ± 1.2" (fractions shown as percent, sd in points); "–" when empty.</summary>
    public static string Pct(MeanSd m) => m.N == 0 ? "–" : Fmt.Pct(m.Mean) + (m.N > 1 ? " ± " + (m.Sd * 100).ToString("0.0", Inv) : "");

    /// <summary>"0.812 ± 0.010".</summary>
    public static string Num(MeanSd m) => m.N == 0 ? "–" : Fmt.Num(m.Mean, 3) + (m.N > 1 ? " ± " + Fmt.Num(m.Sd, 3) : "");

    /// <summary>Variants in first-seen order.</summary>
    public static List<string> Variants(IReadOnlyList<AblationRow> rows) => rows.Select(r => r.Variant).Distinct().ToList();

    /// <summary>One row per variant holding the means (for the bar chart); the history is the first seed's.</summary>
    public static List<AblationRow> MeanRows(IReadOnlyList<AblationRow> rows) => Variants(rows).Select(v =>
    {
        var rs = rows.Where(r => r.Variant == v).ToList();
        return rs[0] with
        {
            FinalTop1 = MeanSd.Of(rs.Select(r => r.FinalTop1)).Mean, BestTop1 = MeanSd.Of(rs.Select(r => r.BestTop1)).Mean,
            FinalMeanIoU = MeanSd.Of(rs.Select(r => r.FinalMeanIoU)).Mean, Seconds = MeanSd.Of(rs.Select(r => r.Seconds)).Mean,
        };
    }).ToList();

    /// <summary>Per seed, (variant − mtl-moe) final top-1 in fractions, for the seeds both ran.</summary>
    public static List<(ulong Seed, double Diff)> PairedDifferences(IReadOnlyList<AblationRow> rows, string variant)
    {
        var reference = rows.Where(r => r.Variant == Reference).ToDictionary(r => r.Seed);
        return rows.Where(r => r.Variant == variant && reference.ContainsKey(r.Seed))
            .Select(r => (r.Seed, r.FinalTop1 - reference[r.Seed].FinalTop1)).ToList();
    }

    /// <summary>The markdown body: means table, paired-difference table, a sentence, and every run.</summary>
    public static string BuildMarkdown(IReadOnlyList<AblationRow> rows)
    {
        var sb = new StringBuilder();
        var seeds = rows.Select(r => r.Seed).Distinct().OrderBy(s => s).ToList();
        double target = rows[0].TargetTop1;
        sb.AppendLine($"{seeds.Count} seeds ({string.Join(", ", seeds)}), the same budget for every variant; mean ± sample standard deviation over the seeds. " +
                      $"\"Epochs to {Fmt.Pct(target)}\" averages the runs that reached it.").AppendLine();
        sb.AppendLine($"| variant | final top-1 | best top-1 | final mean IoU | epochs to {Fmt.Pct(target)} | time |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var v in Variants(rows))
        {
            var rs = rows.Where(r => r.Variant == v).ToList();
            var reached = rs.Where(r => r.EpochsToTarget is not null).Select(r => (double)r.EpochsToTarget!.Value).ToList();
            string epochs = reached.Count == 0 ? "not reached" : $"{MeanSd.Of(reached).Mean.ToString("0.0", Inv)} ({reached.Count}/{rs.Count} reached)";
            sb.AppendLine($"| {Fmt.Cell(v)} | {Pct(MeanSd.Of(rs.Select(r => r.FinalTop1)))} | {Pct(MeanSd.Of(rs.Select(r => r.BestTop1)))} | " +
                          $"{Num(MeanSd.Of(rs.Select(r => r.FinalMeanIoU)))} | {epochs} | {Fmt.Duration(MeanSd.Of(rs.Select(r => r.Seconds)).Mean)} |");
        }
        sb.AppendLine();
        if (rows.Any(r => r.Variant == Reference))
        {
            sb.AppendLine($"Paired differences of final top-1 against {Reference} (variant − {Reference}, same seed), in points:").AppendLine();
            sb.AppendLine($"| variant | {string.Join(" | ", seeds.Select(s => $"seed {s}"))} | mean ± sd | paired t |");
            sb.AppendLine($"|---|{string.Concat(seeds.Select(_ => "---:|"))}---:|---:|");
            foreach (var v in Variants(rows).Where(v => v != Reference))
            {
                var d = PairedDifferences(rows, v);
                var cells = seeds.Select(s => d.Where(x => x.Seed == s).Select(x => Points(x.Diff)).FirstOrDefault() ?? "–");
                var m = MeanSd.Of(d.Select(x => x.Diff));
                sb.AppendLine($"| {Fmt.Cell(v)} | {string.Join(" | ", cells)} | {Points(m.Mean)}{(m.N > 1 ? " ± " + (m.Sd * 100).ToString("0.0", Inv) : "")} | {(double.IsNaN(m.T) ? "–" : m.T.ToString("0.00", Inv))} |");
            }
            sb.AppendLine().AppendLine(Verdict(rows)).AppendLine();
        }
        sb.AppendLine("Every run:").AppendLine();
        sb.AppendLine("| seed | variant | final top-1 | best top-1 | final mean IoU | time |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|");
        foreach (var r in rows.OrderBy(r => r.Seed))
            sb.AppendLine($"| {r.Seed} | {Fmt.Cell(r.Variant)} | {Fmt.Pct(r.FinalTop1)} | {Fmt.Pct(r.BestTop1)} | {Fmt.Num(r.FinalMeanIoU, 3)} | {Fmt.Duration(r.Seconds)} |");
        return sb.ToString();
    }

    private static string Points(double fraction) => double.IsNaN(fraction) ? "–" : (fraction * 100).ToString("+0.0;−0.0;0.0", Inv);

    /// <summary>
    /// One sentence per comparison with mtl-moe: a difference counts as real when its paired |t| exceeds the two-sided
    /// 5 % critical value of Student's t with n − 1 degrees of freedom; otherwise it is within the seeds' noise.
    /// </summary>
    public static string Verdict(IReadOnlyList<AblationRow> rows)
    {
        var parts = new List<string>();
        foreach (var v in Variants(rows).Where(v => v != Reference))
        {
            var m = MeanSd.Of(PairedDifferences(rows, v).Select(x => x.Diff));
            if (m.N < 2) { parts.Add($"{v}: one pair only, no test"); continue; }
            if (m.AllEqual) { parts.Add($"{v} differs from {Reference} by {Points(m.Mean)} points on every seed alike (no t-test with zero spread, n = {m.N})"); continue; }
            bool real = Math.Abs(m.T) > TCritical(m.N - 1);
            string dir = m.Mean < 0 ? "below" : "above";
            parts.Add(real ? $"{v} is {Points(Math.Abs(m.Mean)).TrimStart('+')} points {dir} {Reference} (paired t = {m.T.ToString("0.00", Inv)}, n = {m.N}, p < 0.05)"
                           : $"{v} differs from {Reference} by {Points(m.Mean)} points, within the seeds' noise (paired t = {(double.IsNaN(m.T) ? "–" : m.T.ToString("0.00", Inv))}, n = {m.N})");
        }
        return string.Join("; ", parts) + ".";
    }

    // Two-sided 5 % critical values of Student's t for 1..10 degrees of freedom, then the normal 1.96 as a bound.
    private static double TCritical(int df) => df switch
    {
        1 => 12.706, 2 => 4.303, 3 => 3.182, 4 => 2.776, 5 => 2.571, 6 => 2.447, 7 => 2.365, 8 => 2.306, 9 => 2.262, 10 => 2.228,
        _ => df <= 30 ? 2.2 : 1.96,
    };
}
