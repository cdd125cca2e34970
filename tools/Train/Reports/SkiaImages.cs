using MtlMoe.Model.Data;
using SkiaSharp;

namespace MtlMoe.Train.Reports;

/// <summary>What the pictures drawn with SkiaSharp share: images from <see cref="RgbImage"/>, a legible typeface.</summary>
internal static class SkiaImages
{
    /// <summary>An opaque Skia image with the pixels of <paramref name="img"/>.</summary>
    public static SKImage From(RgbImage img)
    {
        var rgba = new byte[img.Width * img.Height * 4];
        var src = img.Pixels;
        for (int i = 0, j = 0; i < src.Length; i += 3, j += 4)
        {
            rgba[j] = src[i]; rgba[j + 1] = src[i + 1]; rgba[j + 2] = src[i + 2]; rgba[j + 3] = 255;
        }
        return SKImage.FromPixelCopy(new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Opaque), rgba, img.Width * 4);
    }

    /// <summary>ScottPlot's sans typeface (it ships fonts; cached by ScottPlot, not to be disposed), else Skia's default.</summary>
    public static SKTypeface Typeface()
    {
        try { return ScottPlot.Fonts.GetTypeface(ScottPlot.Fonts.Default, bold: false, italic: false); }
        catch (Exception) { return SKTypeface.Default; }
    }

    /// <summary>
    /// A CUB folder name such as "017.Cardinal" without its number. ASCII only is drawn safely: the bundled fallback
    /// font lacks some glyphs.
    /// </summary>
    public static string ClassLabel(string name)
    {
        int dot = name.IndexOf('.');
        return dot > 0 && dot < name.Length - 1 && name[..dot].All(char.IsDigit) ? name[(dot + 1)..] : name;
    }
}
