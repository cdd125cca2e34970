using MtlMoe.Model.Training;
using ScottPlot;

namespace MtlMoe.Train.Reports;

/// <summary>The per-run curves: loss, accuracy, IoU, expert load and learning rate over epochs.</summary>
public static class RunPlots
{
    /// <summary>File names written into the run folder (iou.png only when the run has a box head).</summary>
    public const string Loss = "loss.png", Accuracy = "accuracy.png", IoU = "iou.png", ExpertLoad = "expert_load.png", LearningRate = "lr.png";

    /// <summary>Writes every plot that has data; returns the file names written.</summary>
    public static IReadOnlyList<string> WriteAll(string runDir, IReadOnlyList<EpochMetrics> history)
    {
        var written = new List<string>();
        if (history.Count == 0) return written;
        WriteLoss(Path.Combine(runDir, Loss), history); written.Add(Loss);
        WriteAccuracy(Path.Combine(runDir, Accuracy), history); written.Add(Accuracy);
        if (history.Any(h => double.IsFinite(h.TestMeanIoU))) { WriteIoU(Path.Combine(runDir, IoU), history); written.Add(IoU); }
        if (history.Any(h => h.ExpertLoad.Length > 0)) { WriteExpertLoad(Path.Combine(runDir, ExpertLoad), history); written.Add(ExpertLoad); }
        WriteLearningRate(Path.Combine(runDir, LearningRate), history); written.Add(LearningRate);
        return written;
    }

    private static double[] Epochs(IReadOnlyList<EpochMetrics> h) => h.Select(m => (double)m.Epoch).ToArray();

    private static void Add(Plot plot, double[] x, double[] y, string label, int colour, bool dashed = false)
    {
        var (fx, fy) = ChartFile.Finite(x, y);
        if (fx.Length > 0) ChartFile.Line(plot, fx, fy, label, ChartFile.SeriesColor(colour), dashed);
    }

    /// <summary>Train and test total loss, plus the class / box / aux parts of the training loss (parts that stay 0 are left out).</summary>
    public static void WriteLoss(string path, IReadOnlyList<EpochMetrics> h)
    {
        var plot = new Plot();
        var x = Epochs(h);
        Add(plot, x, h.Select(m => m.TrainLoss).ToArray(), "train total", 0);
        Add(plot, x, h.Select(m => m.TestLoss).ToArray(), "test total", 1);
        Add(plot, x, h.Select(m => m.TrainClassLoss).ToArray(), "train class (CE)", 2, dashed: true);
        if (h.Any(m => m.TrainBoxLoss != 0)) Add(plot, x, h.Select(m => m.TrainBoxLoss).ToArray(), "train box (L1+GIoU)", 3, dashed: true);
        if (h.Any(m => m.TrainAuxLoss != 0)) Add(plot, x, h.Select(m => m.TrainAuxLoss).ToArray(), "train aux (MoE balance)", 4, dashed: true);
        ChartFile.Style(plot, "Loss", "epoch", "loss");
        plot.Axes.SetLimitsY(0, Math.Max(1e-6, MaxFinite(h.SelectMany(m => new[] { m.TrainLoss, m.TestLoss, m.TrainClassLoss, m.TrainBoxLoss, m.TrainAuxLoss })) * 1.08));
        plot.ShowLegend(Alignment.UpperRight);
        ChartFile.SavePng(plot, path);
    }

    /// <summary>Train top-1, test top-1 and test top-5 in percent.</summary>
    public static void WriteAccuracy(string path, IReadOnlyList<EpochMetrics> h)
    {
        var plot = new Plot();
        var x = Epochs(h);
        Add(plot, x, h.Select(m => m.TrainTop1 * 100).ToArray(), "train top-1", 0);
        Add(plot, x, h.Select(m => m.TestTop1 * 100).ToArray(), "test top-1", 1);
        Add(plot, x, h.Select(m => m.TestTop5 * 100).ToArray(), "test top-5", 2, dashed: true);
        ChartFile.Style(plot, $"Accuracy (final test top-1 {Fmt.Pct(h[^1].TestTop1)})", "epoch", "accuracy (%)");
        plot.Axes.SetLimitsY(0, 102);
        plot.ShowLegend(Alignment.LowerRight);
        ChartFile.SavePng(plot, path);
    }

    /// <summary>Test mean IoU and share of boxes with IoU ≥ 0.5 (epochs with NaN are skipped).</summary>
    public static void WriteIoU(string path, IReadOnlyList<EpochMetrics> h)
    {
        var plot = new Plot();
        var x = Epochs(h);
        Add(plot, x, h.Select(m => m.TestMeanIoU).ToArray(), "test mean IoU", 0);
        Add(plot, x, h.Select(m => m.TestIoU50).ToArray(), "share with IoU ≥ 0.5", 1, dashed: true);
        ChartFile.Style(plot, $"Box localisation (final mean IoU {Fmt.Num(h[^1].TestMeanIoU, 3)})", "epoch", "IoU / share");
        plot.Axes.SetLimitsY(0, 1.02);
        plot.ShowLegend(Alignment.LowerRight);
        ChartFile.SavePng(plot, path);
    }

    /// <summary>One line per expert (rows routed / ideal), with the balanced level 1 marked.</summary>
    public static void WriteExpertLoad(string path, IReadOnlyList<EpochMetrics> h)
    {
        var plot = new Plot();
        var x = Epochs(h);
        int experts = h.Max(m => m.ExpertLoad.Length);
        for (int e = 0; e < experts; e++)
            Add(plot, x, h.Select(m => e < m.ExpertLoad.Length ? m.ExpertLoad[e] : double.NaN).ToArray(), $"expert {e}", e);
        var balanced = plot.Add.HorizontalLine(1, 2, Colors.Black, LinePattern.Dashed);
        balanced.LegendText = "balanced (1)";
        ChartFile.Style(plot, "Expert load on the test split (1 = balanced)", "epoch", "load (routed / ideal)");
        double top = MaxFinite(h.SelectMany(m => m.ExpertLoad));
        plot.Axes.SetLimitsY(0, Math.Max(2, top * 1.1));
        plot.ShowLegend(Alignment.UpperRight);
        ChartFile.SavePng(plot, path);
    }

    /// <summary>Learning rate at the end of each epoch.</summary>
    public static void WriteLearningRate(string path, IReadOnlyList<EpochMetrics> h)
    {
        var plot = new Plot();
        Add(plot, Epochs(h), h.Select(m => m.LearningRate).ToArray(), "", 0);
        ChartFile.Style(plot, "Learning rate (end of epoch)", "epoch", "learning rate");
        plot.Axes.SetLimitsY(0, Math.Max(1e-12, MaxFinite(h.Select(m => m.LearningRate)) * 1.1));
        ChartFile.SavePng(plot, path);
    }

    internal static double MaxFinite(IEnumerable<double> values)
    {
        double m = 0;
        foreach (var v in values) if (double.IsFinite(v) && v > m) m = v;
        return m;
    }
}
