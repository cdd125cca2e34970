using System.Text;
using MtlMoe.Model.IO;
using MtlMoe.Model.Training;

namespace MtlMoe.Train.Reports;

/// <summary>Builds report.md for a finished run.</summary>
public static class RunReport
{
    /// <summary>File name inside the run folder.</summary>
    public const string FileName = "report.md";

    /// <summary>Writes report.md (atomically) and returns its text.</summary>
    public static string Write(string runDir, string config, IReadOnlyList<EpochMetrics> history, EvalResult final, int numExperts,
                               IReadOnlyList<string> plots, GalleryResult gallery)
    {
        var text = Build(config, history, final, numExperts, plots, gallery);
        AtomicFile.WriteAllText(Path.Combine(runDir, FileName), text);
        return text;
    }

    /// <summary>The markdown text.</summary>
    public static string Build(string config, IReadOnlyList<EpochMetrics> history, EvalResult final, int numExperts,
                               IReadOnlyList<string> plots, GalleryResult gallery)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Training run report").AppendLine();
        FinalMetrics(sb, history, final);
        Pictures(sb, plots);
        EpochTable(sb, history);
        PerClass(sb, final);
        Confused(sb, final);
        Experts(sb, final, numExperts);
        Gallery(sb, gallery);
        sb.AppendLine("## Configuration").AppendLine().AppendLine("```json").AppendLine(config.TrimEnd()).AppendLine("```");
        return sb.ToString();
    }

    private static void FinalMetrics(StringBuilder sb, IReadOnlyList<EpochMetrics> history, EvalResult f)
    {
        sb.AppendLine("## Final metrics (test split)").AppendLine();
        sb.AppendLine("| metric | value |").AppendLine("|---|---|");
        sb.AppendLine($"| test images | {f.Samples.Count} |");
        sb.AppendLine($"| classes | {f.ClassNames.Count} |");
        sb.AppendLine($"| top-1 accuracy | {Fmt.Pct(f.Top1)} |");
        sb.AppendLine($"| top-5 accuracy | {Fmt.Pct(f.Top5)} |");
        sb.AppendLine($"| loss | {Fmt.Num(f.Loss, 4)} |");
        sb.AppendLine($"| mean box IoU | {Fmt.Num(f.MeanIoU, 3)} |");
        sb.AppendLine($"| boxes with IoU ≥ 0.5 | {Fmt.Pct(f.IoU50)} |");
        sb.AppendLine($"| expert load (routed / ideal) | {Fmt.Loads(f.ExpertLoad)} |");
        sb.AppendLine($"| evaluated crop | {f.CropSize}² (resize {f.ResizeSize}) |");
        if (history.Count > 0)
        {
            var best = history.MaxBy(h => h.TestTop1)!;
            sb.AppendLine($"| epochs | {history.Count} |");
            sb.AppendLine($"| best test top-1 | {Fmt.Pct(best.TestTop1)} (epoch {best.Epoch}) |");
            sb.AppendLine($"| training time | {Fmt.Duration(history.Sum(h => h.Seconds))} |");
        }
        sb.AppendLine();
    }

    private static void Pictures(StringBuilder sb, IReadOnlyList<string> plots)
    {
        if (plots.Count == 0) return;
        sb.AppendLine("## Curves").AppendLine();
        foreach (var p in plots) sb.AppendLine($"![{Path.GetFileNameWithoutExtension(p)}]({p})").AppendLine();
    }

    private static void EpochTable(StringBuilder sb, IReadOnlyList<EpochMetrics> history)
    {
        if (history.Count == 0) return;
        sb.AppendLine("## Per epoch").AppendLine();
        sb.AppendLine("| epoch | train loss | class | box | aux | train top-1 | test loss | test top-1 | test top-5 | mean IoU | IoU≥.5 | expert load | lr | time | img/s |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|");
        foreach (var h in history)
            sb.AppendLine($"| {h.Epoch} | {Fmt.Num(h.TrainLoss, 4)} | {Fmt.Num(h.TrainClassLoss, 4)} | {Fmt.Num(h.TrainBoxLoss, 4)} | {Fmt.Num(h.TrainAuxLoss, 4)} | " +
                          $"{Fmt.Pct(h.TrainTop1)} | {Fmt.Num(h.TestLoss, 4)} | {Fmt.Pct(h.TestTop1)} | {Fmt.Pct(h.TestTop5)} | {Fmt.Num(h.TestMeanIoU, 3)} | " +
                          $"{Fmt.Pct(h.TestIoU50)} | {Fmt.Loads(h.ExpertLoad)} | {Fmt.Lr(h.LearningRate)} | {Fmt.Duration(h.Seconds)} | {Fmt.Num(h.ImagesPerSecond, 1)} |");
        sb.AppendLine();
    }

    private static void PerClass(StringBuilder sb, EvalResult f)
    {
        var rows = ReportAnalysis.PerClassAccuracy(f);
        sb.AppendLine("## Per-class accuracy (worst first)").AppendLine();
        int empty = f.ClassNames.Count - rows.Count;
        if (empty > 0) sb.AppendLine($"{empty} class(es) have no test images and are not listed.").AppendLine();
        sb.AppendLine("| class | name | correct | support | accuracy |").AppendLine("|---:|---|---:|---:|---:|");
        foreach (var r in rows) sb.AppendLine($"| {r.ClassIndex} | {Fmt.Cell(r.Name)} | {r.Correct} | {r.Support} | {Fmt.Pct(r.Accuracy)} |");
        sb.AppendLine();
    }

    private static void Confused(StringBuilder sb, EvalResult f)
    {
        var pairs = ReportAnalysis.MostConfused(f, 10);
        sb.AppendLine("## Most confused pairs (true → predicted)").AppendLine();
        if (pairs.Count == 0) { sb.AppendLine("No misclassified test images.").AppendLine(); return; }
        sb.AppendLine("| true | predicted | count | share of true class |").AppendLine("|---|---|---:|---:|");
        foreach (var p in pairs)
            sb.AppendLine($"| {Fmt.Cell(Name(f, p.TrueClass))} | {Fmt.Cell(Name(f, p.PredictedClass))} | {p.Count} | {Fmt.Pct(p.Share)} ({p.Count}/{p.Support}) |");
        sb.AppendLine();
    }

    private static void Experts(StringBuilder sb, EvalResult f, int numExperts)
    {
        sb.AppendLine("## Expert specialisation").AppendLine();
        sb.AppendLine("Routed = test images for which the expert was among the k chosen; top gate = images where it had the largest gate. " +
                      "Top classes: images of the class routed here / all test images of the class, and the accuracy on those routed images.").AppendLine();
        sb.AppendLine("| expert | routed | top gate | mean gate | accuracy | top classes routed to it |").AppendLine("|---:|---:|---:|---:|---:|---|");
        foreach (var e in ReportAnalysis.Experts(f, numExperts))
        {
            var classes = string.Join("; ", e.TopClasses.Select(c => $"{Fmt.Cell(Name(f, c.ClassIndex))} {c.Routed}/{c.Support} ({Fmt.Pct(c.Accuracy)} correct)"));
            sb.AppendLine($"| {e.Expert} | {e.Routed} | {e.TopRouted} | {Fmt.Num(e.MeanGate, 3)} | {Fmt.Pct(e.Accuracy)} | {(classes.Length == 0 ? "–" : classes)} |");
        }
        sb.AppendLine();
    }

    private static void Gallery(StringBuilder sb, GalleryResult g)
    {
        sb.AppendLine("## Expert gallery").AppendLine();
        sb.AppendLine($"Per expert, up to {ExpertGallery.MaxImages} test images routed to it, highest gate first ([index]({ExpertGallery.Folder}/index.md)). " +
                      "Cyan box = true box, magenta box = predicted box; green frame = class correct, red frame = wrong; caption: ok/WRONG and the predicted class (true class when wrong), image id, gate g, box IoU.").AppendLine();
        for (int e = 0; e < g.Files.Count; e++)
            sb.AppendLine(g.Files[e] is null ? $"Expert {e}: nothing to show." : $"### Expert {e}\n\n![expert {e}]({g.Files[e]})").AppendLine();
        if (g.Notes.Count > 0)
        {
            sb.AppendLine("Notes:").AppendLine();
            foreach (var n in g.Notes) sb.AppendLine($"- {Fmt.Cell(n)}");
            sb.AppendLine();
        }
    }

    private static string Name(EvalResult f, int c) => (uint)c < (uint)f.ClassNames.Count ? f.ClassNames[c] : $"class {c}";
}
