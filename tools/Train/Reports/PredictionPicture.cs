using MtlMoe.Model.Data;
using MtlMoe.Model.IO;
using SkiaSharp;

namespace MtlMoe.Train.Reports;

/// <summary><c>predict --annotate</c>: the original image with the predicted box and a label "class 93.2 %".</summary>
internal static class PredictionPicture
{
    private static readonly SKColor BoxColor = new(255, 64, 32);

    /// <summary>Writes a PNG of <paramref name="image"/> with <paramref name="box"/> (original pixels, may be null) and <paramref name="label"/>.</summary>
    public static void Save(string path, RgbImage image, BoxF? box, string label)
    {
        // Lines and text scale with the image so they stay visible on large photos and do not swamp small ones.
        float unit = Math.Max(1f, Math.Min(image.Width, image.Height) / 200f);
        using var surface = SKSurface.Create(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        using (var img = SkiaImages.From(image)) canvas.DrawImage(img, 0, 0);
        float textX = 2 * unit, textTop = 2 * unit;
        if (box is BoxF b && b.Area > 0)
        {
            var rect = SKRect.Create(b.X0, b.Y0, b.Width, b.Height);
            using var halo = new SKPaint { Color = new SKColor(0, 0, 0, 150), IsStroke = true, StrokeWidth = 3.5f * unit, IsAntialias = true };
            using var line = new SKPaint { Color = BoxColor, IsStroke = true, StrokeWidth = 2f * unit, IsAntialias = true };
            canvas.DrawRect(rect, halo);
            canvas.DrawRect(rect, line);
            textX = b.X0; textTop = b.Y0;
        }
        using var font = new SKFont(SkiaImages.Typeface(), 9 * unit);
        float w = font.MeasureText(label) + 4 * unit, h = 12 * unit;
        // The label sits on the box's top edge, moved inside the picture when the box touches its border.
        float x = Math.Clamp(textX, 0, Math.Max(0, image.Width - w)), y = Math.Clamp(textTop - h, 0, Math.Max(0, image.Height - h));
        using (var back = new SKPaint { Color = BoxColor }) canvas.DrawRect(x, y, w, h, back);
        using (var ink = new SKPaint { Color = SKColors.White, IsAntialias = true })
            canvas.DrawText(label, x + 2 * unit, y + 9.5f * unit, SKTextAlign.Left, font, ink);
        using var snapshot = surface.Snapshot();
        using var data = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.Write(path, st => data.SaveTo(st));
    }
}
