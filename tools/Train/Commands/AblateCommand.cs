using MtlMoe.Model.IO;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;

namespace MtlMoe.Train.Commands;

/// <summary><c>ablate</c>: trains single, moe, mtl and mtl-moe with the same seed and budget and compares them.</summary>
public static class AblateCommand
{
    /// <summary>The variants, in the order of the table.</summary>
    public static IReadOnlyList<ModelVariant> Variants => ChoiceNames.Values<ModelVariant>();

    /// <summary>The test top-1 whose first epoch the table reports.</summary>
    public const double TargetTop1 = 0.6;

    /// <summary>Runs the command; returns the exit code.</summary>
    public static int Run(TrainSettings settings, CancellationToken cancel)
    {
        using var progress = Reporting.CreateProgress(settings);
        var rows = Ablate(settings, progress, Reporting.Create(), cancel, out var dir);
        progress.Message($"ablation in {Path.GetFullPath(dir)} (target top-1 {TargetTop1:P0}):");
        if (settings.Seeds > 1)
        {
            progress.Message($"{"variant",-8} {"final top-1",16} {"best top-1",16} {"mean IoU",15}  (mean ± sd over {settings.Seeds} seeds)");
            foreach (var name in Variants.Select(v => v.ToChoiceName()))
            {
                var rs = rows.Where(r => r.Variant == name).ToList();
                progress.Message($"{name,-8} {Reports.AblationSeeds.Pct(Reports.MeanSd.Of(rs.Select(r => r.FinalTop1))),16} {Reports.AblationSeeds.Pct(Reports.MeanSd.Of(rs.Select(r => r.BestTop1))),16} {Reports.AblationSeeds.Num(Reports.MeanSd.Of(rs.Select(r => r.FinalMeanIoU))),15}");
            }
            progress.Message(Reports.AblationSeeds.Verdict(rows));
            return 0;
        }
        progress.Message($"{"variant",-8} {"final top-1",11} {"best top-1",10} {"mean IoU",8} {"epochs to target",16} {"seconds",8}");
        foreach (var r in rows)
            progress.Message($"{r.Variant,-8} {r.FinalTop1,11:P1} {r.BestTop1,10:P1} {(double.IsNaN(r.FinalMeanIoU) ? "—" : r.FinalMeanIoU.ToString("F3")),8} {(r.EpochsToTarget?.ToString() ?? "never"),16} {r.Seconds,8:F0}");
        return 0;
    }

    /// <summary>
    /// Trains each variant into &lt;out&gt;/&lt;variant&gt; (with --seeds N: seeds --seed … --seed + N − 1, into
    /// &lt;out&gt;/seed&lt;s&gt;/&lt;variant&gt;) and hands the rows to the reporter. Run again with the same --out after an
    /// interruption, it continues: finished variants are re-evaluated, the interrupted one resumes from its last epoch.
    /// </summary>
    public static List<AblationRow> Ablate(TrainSettings settings, ITrainingProgress progress, IRunReporter? reporter, CancellationToken cancel, out string dir)
    {
        dir = settings.Out ?? Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture) + "-ablate");
        var rows = new List<AblationRow>();
        for (int k = 0; k < settings.Seeds; k++)
        {
            ulong seed = settings.Seed + (ulong)k;
            foreach (var v in Variants)
            {
                string name = v.ToChoiceName();
                string outDir = settings.Seeds > 1 ? Path.Combine(dir, $"seed{seed}", name) : Path.Combine(dir, name);
                var requested = settings with { Command = CommandKind.Train, Variant = v, Out = outDir, Resume = null, Seed = seed };
                var s = AblationResume.Plan(requested, outDir, out bool resumed);
                string title = settings.Seeds > 1 ? $"{name}, seed {seed}" : name;
                progress.Message($"── ablate: {title}{(resumed ? $" (continuing {outDir})" : "")} ──");
                var r = TrainCommand.Train(s, progress, reporter, cancel);
                int? reached = r.History.FirstOrDefault(m => m.TestTop1 >= TargetTop1)?.Epoch;
                // Training time summed over the epochs, so a run continued after an interruption counts whole.
                double seconds = r.History.Sum(m => m.Seconds);
                rows.Add(new AblationRow(name, r.Final.Top1, r.BestTop1, r.Final.MeanIoU, reached, TargetTop1, seconds, r.History, seed));
            }
        }
        reporter?.AblationFinished(dir, rows);
        return rows;
    }
}
