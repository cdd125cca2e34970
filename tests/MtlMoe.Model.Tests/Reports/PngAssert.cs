using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace MtlMoe.Tests.Reports;

/// <summary>Decodes PNGs written by the reports and checks them.</summary>
internal static class PngAssert
{
    /// <summary>Decodes <paramref name="path"/> (fails the test if it is not a valid PNG) and returns it.</summary>
    public static Image<Rgb24> Decode(string path, int minWidth = 300, int minHeight = 200)
    {
        Assert.That(File.Exists(path), Is.True, $"{path} was not written");
        var bytes = File.ReadAllBytes(path);
        Assert.That(bytes.Take(8).ToArray(), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), $"{path} is not a PNG");
        var img = Image.Load<Rgb24>(bytes);
        Assert.That(img.Width, Is.InRange(minWidth, 4000), $"{path} width");
        Assert.That(img.Height, Is.InRange(minHeight, 4000), $"{path} height");
        return img;
    }

    /// <summary>Pixels within <paramref name="tolerance"/> of (r, g, b) per channel.</summary>
    public static int CountNear(Image<Rgb24> img, byte r, byte g, byte b, int tolerance = 30)
    {
        int n = 0;
        img.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
                foreach (var p in rows.GetRowSpan(y))
                    if (Math.Abs(p.R - r) <= tolerance && Math.Abs(p.G - g) <= tolerance && Math.Abs(p.B - b) <= tolerance) n++;
        });
        return n;
    }

    /// <summary>Distinct colours (quantised to 32 levels) — a blank image has one or two.</summary>
    public static int DistinctColours(Image<Rgb24> img)
    {
        var set = new HashSet<int>();
        img.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
                foreach (var p in rows.GetRowSpan(y)) set.Add((p.R >> 3) << 10 | (p.G >> 3) << 5 | (p.B >> 3));
        });
        return set.Count;
    }
}
