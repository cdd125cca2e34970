using MtlMoe.Engine;
using MtlMoe.Model.Data;
using MtlMoe.Model.IO;
using MtlMoe.Model.Training;
using SkiaSharp;

namespace MtlMoe.Train.Reports;

/// <summary>What the gallery wrote.</summary>
/// <param name="Files">Per expert: its PNG's path relative to the run folder, or null when no image could be shown.</param>
/// <param name="Notes">Skipped images and experts with nothing to show, one line each.</param>
public sealed record GalleryResult(IReadOnlyList<string?> Files, IReadOnlyList<string> Notes);

/// <summary>
/// The expert gallery: per expert a grid of the test images routed to it (highest gate first), each the evaluated
/// crop with the true box (cyan) and predicted box (magenta) drawn, a green frame when the class was right and a
/// red one when wrong, and a caption strip (image id, predicted class, gate, IoU).
/// </summary>
public static class ExpertGallery
{
    /// <summary>Folder (inside the run folder) holding the pictures.</summary>
    public const string Folder = "gallery";

    /// <summary>Most images per expert.</summary>
    public const int MaxImages = 24;

    /// <summary>Colours used (also named in the legend strip and report.md).</summary>
    public static readonly SKColor TrueBoxColor = new(0, 210, 255), PredictedBoxColor = new(255, 0, 200),
        CorrectColor = new(20, 170, 60), WrongColor = new(220, 30, 30);

    private const int Columns = 6, Gap = 6, Frame = 4, CaptionHeight = 49, HeaderHeight = 58;

    /// <summary>Writes gallery/expert_&lt;e&gt;.png for every expert and gallery/index.md.</summary>
    public static GalleryResult Write(string runDir, EvalResult eval, int numExperts, ImageLoader? loader = null)
    {
        loader ??= ImageLoader.Default;
        var notes = new List<string>();
        var files = new List<string?>();
        var crops = new Dictionary<int, RgbImage?>(); // image id → crop (null: could not load), shared across experts
        var transform = CubTransforms.Test(eval.CropSize, eval.ResizeSize);
        for (int e = 0; e < numExperts; e++)
        {
            var routed = eval.Samples.Where(s => Array.IndexOf(s.Experts, e) >= 0)
                .OrderByDescending(s => ReportAnalysis.GateOf(s, e)).ThenBy(s => s.ImageId).ToList();
            var tiles = new List<(SamplePrediction S, RgbImage Crop)>();
            foreach (var s in routed)
            {
                if (tiles.Count == MaxImages) break;
                if (!crops.TryGetValue(s.ImageId, out var crop))
                {
                    crop = LoadCrop(s, transform, loader, out var why);
                    crops[s.ImageId] = crop;
                    if (crop is null) notes.Add($"image {s.ImageId} skipped: {why}");
                }
                if (crop is not null) tiles.Add((s, crop));
            }
            if (tiles.Count == 0)
            {
                notes.Add(routed.Count == 0 ? $"expert {e}: no test images routed to it" : $"expert {e}: none of its {routed.Count} images could be loaded");
                files.Add(null);
                continue;
            }
            string rel = $"{Folder}/expert_{e}.png";
            int correct = routed.Count(s => s.Top5.Length > 0 && s.PredictedClass == s.TrueClass);
            string title = $"Expert {e}: {routed.Count} test images routed, {Fmt.Pct((double)correct / routed.Count)} correct; top {tiles.Count} by gate";
            WriteGrid(Path.Combine(runDir, rel), title, e, tiles, eval);
            files.Add(rel);
        }
        WriteIndex(runDir, files, notes);
        return new GalleryResult(files, notes);
    }

    /// <summary>Reproduces the evaluated crop: decode, resize shorter side, centre crop (deterministic).</summary>
    private static RgbImage? LoadCrop(SamplePrediction s, IBoxTransform transform, ImageLoader loader, out string why)
    {
        why = "";
        if (string.IsNullOrEmpty(s.ImagePath)) { why = "no image path (in-memory data set)"; return null; }
        if (!File.Exists(s.ImagePath)) { why = $"file not found: {s.ImagePath}"; return null; }
        try
        {
            var img = loader.Load(s.ImagePath);
            return transform.Apply(new BoxedImage(img, new BoxF(0, 0, img.Width, img.Height)), new Rng(0)).Image;
        }
        catch (CubFormatException ex) { why = ex.Message; return null; }
    }

    private static void WriteIndex(string runDir, IReadOnlyList<string?> files, IReadOnlyList<string> notes)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("# Expert gallery").AppendLine();
        sb.AppendLine("Test images routed to each expert, highest gate first. Each tile is the evaluated crop;");
        sb.AppendLine("**cyan** box = true box, **magenta** box = predicted box; **green** frame = class correct, **red** frame = wrong.");
        sb.AppendLine("Caption: ok/WRONG and the predicted class (true class when wrong), then image id, gate g for this expert, box IoU.").AppendLine();
        for (int e = 0; e < files.Count; e++)
            sb.AppendLine(files[e] is null ? $"- Expert {e}: nothing to show" : $"- [Expert {e}](expert_{e}.png)");
        sb.AppendLine();
        for (int e = 0; e < files.Count; e++)
            if (files[e] is not null) sb.AppendLine($"## Expert {e}").AppendLine().AppendLine($"![expert {e}](expert_{e}.png)").AppendLine();
        if (notes.Count > 0)
        {
            sb.AppendLine("## Notes").AppendLine();
            foreach (var n in notes) sb.AppendLine($"- {n}");
        }
        AtomicFile.WriteAllText(Path.Combine(runDir, Folder, "index.md"), sb.ToString());
    }

    private static void WriteGrid(string path, string title, int expert, List<(SamplePrediction S, RgbImage Crop)> tiles, EvalResult eval)
    {
        // Tiles are shown at 160–224 px whatever the crop size, so boxes and captions stay legible.
        int side = Math.Clamp(eval.CropSize, 160, 224);
        int cols = Math.Min(Columns, tiles.Count), rows = (tiles.Count + cols - 1) / cols;
        int cellW = side + 2 * Frame, cellH = side + 2 * Frame + CaptionHeight;
        int width = Math.Max(cols * cellW + (cols + 1) * Gap, 640), height = HeaderHeight + rows * cellH + (rows + 1) * Gap;
        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        var typeface = SkiaImages.Typeface(); // cached by ScottPlot: not disposed here
        using var titleFont = new SKFont(typeface, 18);
        using var small = new SKFont(typeface, 12.5f);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(title, Gap, 22, SKTextAlign.Left, titleFont, ink);
        DrawLegend(canvas, small, Gap, 44);

        for (int i = 0; i < tiles.Count; i++)
        {
            var (s, crop) = tiles[i];
            float x = Gap + (i % cols) * (cellW + Gap), y = HeaderHeight + Gap + (i / cols) * (cellH + Gap);
            bool ok = s.Top5.Length > 0 && s.PredictedClass == s.TrueClass;
            using (var frame = new SKPaint { Color = ok ? CorrectColor : WrongColor })
                canvas.DrawRect(x, y, cellW, side + 2 * Frame, frame);
            var dest = new SKRect(x + Frame, y + Frame, x + Frame + side, y + Frame + side);
            using (var img = SkiaImages.From(crop))
                canvas.DrawImage(img, dest, new SKSamplingOptions(SKFilterMode.Linear));
            canvas.Save();
            canvas.ClipRect(dest);
            DrawBox(canvas, dest, s.TrueBox, TrueBoxColor);
            if (s.PredictedBox is not null) DrawBox(canvas, dest, s.PredictedBox, PredictedBoxColor);
            canvas.Restore();

            float ty = y + side + 2 * Frame;
            string pred = s.Top5.Length > 0 ? ClassLabel(eval, s.PredictedClass) : "?";
            // ASCII only: the bundled fallback font has no check-mark glyphs. Line 2 names the true class when wrong.
            string line1 = ok ? $"ok: {pred}" : $"WRONG: {pred}";
            string line2 = ok ? "" : $"true: {ClassLabel(eval, s.TrueClass)}";
            string line3 = $"#{s.ImageId}  g {Fmt.Num(ReportAnalysis.GateOf(s, expert), 2)}" + (double.IsNaN(s.IoU) ? "" : $"  IoU {Fmt.Num(s.IoU, 2)}");
            using var mark = new SKPaint { Color = ok ? CorrectColor : WrongColor, IsAntialias = true };
            canvas.DrawText(Fit(line1, small, cellW), x + 2, ty + 14, SKTextAlign.Left, small, mark);
            if (line2.Length > 0) canvas.DrawText(Fit(line2, small, cellW), x + 2, ty + 29, SKTextAlign.Left, small, ink);
            canvas.DrawText(Fit(line3, small, cellW), x + 2, ty + 44, SKTextAlign.Left, small, ink);
        }

        using var snapshot = surface.Snapshot();
        using var data = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, st => data.SaveTo(st));
    }

    private static void DrawLegend(SKCanvas canvas, SKFont font, float x, float baseline)
    {
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        foreach (var (colour, label, filled) in new[] { (TrueBoxColor, "true box", false), (PredictedBoxColor, "predicted box", false), (CorrectColor, "class correct", true), (WrongColor, "class wrong", true) })
        {
            using var p = new SKPaint { Color = colour, IsStroke = !filled, StrokeWidth = 3 };
            canvas.DrawRect(x, baseline - 11, 16, 12, p);
            x += 22;
            canvas.DrawText(label, x, baseline, SKTextAlign.Left, font, ink);
            x += font.MeasureText(label) + 18;
        }
    }

    private static void DrawBox(SKCanvas canvas, SKRect dest, float[] box, SKColor colour)
    {
        if (box.Length < 4) return;
        float l = dest.Left + box[0] * dest.Width, t = dest.Top + box[1] * dest.Height;
        float r = dest.Left + box[2] * dest.Width, b = dest.Top + box[3] * dest.Height;
        // A dark halo under the coloured line keeps it visible on light and dark backgrounds.
        using var halo = new SKPaint { Color = new SKColor(0, 0, 0, 150), IsStroke = true, StrokeWidth = 4.5f, IsAntialias = true };
        using var line = new SKPaint { Color = colour, IsStroke = true, StrokeWidth = 2.5f, IsAntialias = true };
        canvas.DrawRect(SKRect.Create(l, t, r - l, b - t), halo);
        canvas.DrawRect(SKRect.Create(l, t, r - l, b - t), line);
    }

    private static string ClassLabel(EvalResult eval, int c)
    {
        if ((uint)c >= (uint)eval.ClassNames.Count) return $"class {c}";
        return SkiaImages.ClassLabel(eval.ClassNames[c]);
    }

    private static string Fit(string text, SKFont font, float width)
    {
        if (font.MeasureText(text) <= width - 4) return text;
        while (text.Length > 1 && font.MeasureText(text + "…") > width - 4) text = text[..^1];
        return text + "…";
    }
}
