using System.Text;
using MtlMoe.Model.IO;
using MtlMoe.Model.Training;
using ScottPlot;

namespace MtlMoe.Train.Reports;

/// <summary>ablation.md, ablation.png (final/best top-1 and mean IoU per variant) and ablation_curves.png.</summary>
public static class AblationReport
{
    /// <summary>File names inside the ablation folder.</summary>
    public const string Markdown = "ablation.md", Chart = "ablation.png", Curves = "ablation_curves.png";

    /// <summary>Writes the three files.</summary>
    public static void Write(string dir, IReadOnlyList<AblationRow> rows)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, Markdown), BuildMarkdown(rows));
        if (rows.Count == 0) return;
        bool seeds = rows.Select(r => r.Seed).Distinct().Count() > 1;
        WriteChart(Path.Combine(dir, Chart), seeds ? AblationSeeds.MeanRows(rows) : rows);
        WriteCurves(Path.Combine(dir, Curves), seeds ? rows.Where(r => r.Seed == rows[0].Seed).ToList() : rows);
    }

    /// <summary>The markdown: a table and one sentence naming the winner.</summary>
    public static string BuildMarkdown(IReadOnlyList<AblationRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Ablation").AppendLine();
        if (rows.Count == 0) return sb.AppendLine("No variants were run.").ToString();
        if (rows.Select(r => r.Seed).Distinct().Count() > 1)
            return sb.Append(AblationSeeds.BuildMarkdown(rows)).AppendLine()
                .AppendLine($"![mean final and best top-1, mean IoU]({Chart})").AppendLine()
                .AppendLine($"![test top-1 per epoch, seed {rows[0].Seed}]({Curves})").ToString();
        double target = rows[0].TargetTop1;
        sb.AppendLine($"Same seed and budget for every variant. \"Epochs to {Fmt.Pct(target)}\" is the first epoch whose test top-1 reached {Fmt.Pct(target)}.").AppendLine();
        sb.AppendLine($"| variant | final top-1 | best top-1 | final mean IoU | epochs to {Fmt.Pct(target)} | time |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine($"| {Fmt.Cell(r.Variant)} | {Fmt.Pct(r.FinalTop1)} | {Fmt.Pct(r.BestTop1)} | {Fmt.Num(r.FinalMeanIoU, 3)} | " +
                          $"{(r.EpochsToTarget is int e ? e.ToString(System.Globalization.CultureInfo.InvariantCulture) : "not reached")} | {Fmt.Duration(r.Seconds)} |");
        sb.AppendLine().AppendLine(Verdict(rows)).AppendLine();
        sb.AppendLine($"![final and best top-1, mean IoU]({Chart})").AppendLine();
        sb.AppendLine($"![test top-1 per epoch]({Curves})");
        return sb.ToString();
    }

    /// <summary>
    /// One sentence: the variant with the highest final top-1 (ties broken by best top-1, then fewer epochs to the
    /// target), with its margin over the runner-up; a margin under one point is called a tie within noise.
    /// </summary>
    public static string Verdict(IReadOnlyList<AblationRow> rows)
    {
        if (rows.Count == 1) return $"Only {rows[0].Variant} was run ({Fmt.Pct(rows[0].FinalTop1)} final top-1), so there is nothing to compare.";
        var ranked = rows.OrderByDescending(r => r.FinalTop1).ThenByDescending(r => r.BestTop1).ThenBy(r => r.EpochsToTarget ?? int.MaxValue).ToList();
        var (win, second) = (ranked[0], ranked[1]);
        double margin = (win.FinalTop1 - second.FinalTop1) * 100;
        string points = margin.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
        if (margin < 1.0)
            return $"No clear winner: {win.Variant} ended highest ({Fmt.Pct(win.FinalTop1)} final top-1) but only {points} points ahead of {second.Variant} " +
                   $"({Fmt.Pct(second.FinalTop1)}), which is within run-to-run noise for a single seed.";
        return $"{win.Variant} won with {Fmt.Pct(win.FinalTop1)} final test top-1, {points} points ahead of {second.Variant} ({Fmt.Pct(second.FinalTop1)}); " +
               "this is one seed on one data set, not a significance test.";
    }

    private static void WriteChart(string path, IReadOnlyList<AblationRow> rows)
    {
        var plot = new Plot();
        var series = new (string Label, Func<AblationRow, double> Value)[]
        {
            ("final top-1", r => r.FinalTop1 * 100), ("best top-1", r => r.BestTop1 * 100), ("final mean IoU × 100", r => r.FinalMeanIoU * 100),
        };
        const double groupWidth = 0.8;
        double barW = groupWidth / series.Length;
        for (int k = 0; k < series.Length; k++)
        {
            var colour = ChartFile.SeriesColor(k);
            var bars = new List<Bar>();
            for (int i = 0; i < rows.Count; i++)
            {
                double v = series[k].Value(rows[i]);
                if (!double.IsFinite(v)) continue; // no box head: no IoU bar
                bars.Add(new Bar
                {
                    Position = i - groupWidth / 2 + barW * (k + 0.5), Value = v, Size = barW * 0.92, FillColor = colour,
                    Label = v.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture),
                });
            }
            if (bars.Count == 0) continue;
            var bp = plot.Add.Bars(bars);
            bp.LegendText = series[k].Label;
            bp.ValueLabelStyle.FontSize = 12;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, rows.Count).Select(i => (double)i).ToArray(), rows.Select(r => r.Variant).ToArray());
        ChartFile.Style(plot, "Ablation: accuracy and box IoU per variant", "variant", "percent", integerX: false);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 15;
        plot.Axes.SetLimits(-0.6, rows.Count - 0.4, 0, 112);
        plot.ShowLegend(Alignment.UpperLeft, Orientation.Horizontal);
        ChartFile.SavePng(plot, path);
    }

    private static void WriteCurves(string path, IReadOnlyList<AblationRow> rows)
    {
        var plot = new Plot();
        for (int i = 0; i < rows.Count; i++)
        {
            var h = rows[i].History;
            if (h.Count == 0) continue;
            ChartFile.Line(plot, h.Select(m => (double)m.Epoch).ToArray(), h.Select(m => m.TestTop1 * 100).ToArray(), rows[i].Variant, ChartFile.SeriesColor(i));
        }
        var t = plot.Add.HorizontalLine(rows[0].TargetTop1 * 100, 1.5f, Colors.Gray, LinePattern.Dotted);
        t.LegendText = $"target {Fmt.Pct(rows[0].TargetTop1)}";
        ChartFile.Style(plot, "Ablation: test top-1 per epoch", "epoch", "test top-1 (%)");
        plot.Axes.SetLimitsY(0, 102);
        plot.ShowLegend(Alignment.LowerRight);
        ChartFile.SavePng(plot, path);
    }
}
