using MtlMoe.Model.IO;
using ScottPlot;

namespace MtlMoe.Train.Reports;

/// <summary>Shared chart styling and atomic PNG output for ScottPlot plots.</summary>
internal static class ChartFile
{
    /// <summary>Default picture size.</summary>
    public const int Width = 900, Height = 540;

    /// <summary>A distinct colour per series index (Category10, cycling).</summary>
    public static Color SeriesColor(int i) => new ScottPlot.Palettes.Category10().GetColor(i);

    /// <summary>Title, axis labels, readable font sizes and whole-number epoch ticks.</summary>
    public static void Style(Plot plot, string title, string xLabel, string yLabel, bool integerX = true)
    {
        plot.Title(title, 20);
        plot.XLabel(xLabel, 16);
        plot.YLabel(yLabel, 16);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 13;
        plot.Axes.Left.TickLabelStyle.FontSize = 13;
        if (integerX) plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
    }

    /// <summary>A line with markers (markers keep a one-epoch history visible).</summary>
    public static ScottPlot.Plottables.Scatter Line(Plot plot, double[] xs, double[] ys, string label, Color color, bool dashed = false)
    {
        var s = plot.Add.Scatter(xs, ys, color);
        if (label.Length > 0) s.LegendText = label; // unlabelled series stay out of the legend
        s.LineWidth = 2;
        s.MarkerSize = xs.Length > 60 ? 0 : 5;
        if (dashed) s.LinePattern = LinePattern.Dashed;
        return s;
    }

    /// <summary>Renders <paramref name="plot"/> to PNG and writes it atomically (temp file + rename).</summary>
    public static void SavePng(Plot plot, string path, int width = Width, int height = Height)
    {
        var bytes = plot.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>Indices of the finite values.</summary>
    public static (double[] X, double[] Y) Finite(double[] xs, double[] ys)
    {
        var keep = Enumerable.Range(0, ys.Length).Where(i => double.IsFinite(ys[i]) && double.IsFinite(xs[i])).ToArray();
        return (keep.Select(i => xs[i]).ToArray(), keep.Select(i => ys[i]).ToArray());
    }
}
