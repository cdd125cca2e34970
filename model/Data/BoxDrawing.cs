using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace MtlMoe.Model.Data;

/// <summary>Pictures for checking boxes by eye.</summary>
public static class BoxDrawing
{
    /// <summary>A copy of <paramref name="image"/> with <paramref name="box"/> (pixels) outlined.</summary>
    public static RgbImage WithBox(RgbImage image, BoxF box, byte r = 255, byte g = 40, byte b = 40, int thickness = 2)
    {
        var px = (byte[])image.Pixels.Clone();
        int w = image.Width, h = image.Height;
        int x0 = (int)MathF.Round(box.X0), y0 = (int)MathF.Round(box.Y0), x1 = (int)MathF.Round(box.X1) - 1, y1 = (int)MathF.Round(box.Y1) - 1;
        void Set(int x, int y)
        {
            if ((uint)x >= (uint)w || (uint)y >= (uint)h) return;
            int p = (y * w + x) * 3; px[p] = r; px[p + 1] = g; px[p + 2] = b;
        }
        for (int t = 0; t < thickness; t++)
        {
            for (int x = x0; x <= x1; x++) { Set(x, y0 + t); Set(x, y1 - t); }
            for (int y = y0; y <= y1; y++) { Set(x0 + t, y); Set(x1 - t, y); }
        }
        return new RgbImage(w, h, px);
    }

    /// <summary>
    /// Writes a PNG grid of images with their boxes (pixels of each image) outlined; cells are the size of the
    /// largest image, <paramref name="columns"/> per row, separated by a 4-pixel white gap.
    /// </summary>
    public static void SaveGrid(string path, IReadOnlyList<BoxedImage> items, int columns = 5)
    {
        if (items.Count == 0) throw new ArgumentException("save_grid: no images");
        int cw = items.Max(i => i.Image.Width), ch = items.Max(i => i.Image.Height), gap = 4;
        int cols = Math.Min(columns, items.Count), rows = (items.Count + cols - 1) / cols;
        int W = cols * cw + (cols + 1) * gap, H = rows * ch + (rows + 1) * gap;
        var grid = new byte[W * H * 3];
        Array.Fill(grid, (byte)255);
        for (int k = 0; k < items.Count; k++)
        {
            var img = WithBox(items[k].Image, items[k].Box);
            int ox = gap + (k % cols) * (cw + gap), oy = gap + (k / cols) * (ch + gap);
            for (int y = 0; y < img.Height; y++)
                Buffer.BlockCopy(img.Pixels, y * img.Width * 3, grid, ((oy + y) * W + ox) * 3, img.Width * 3);
        }
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var png = Image.LoadPixelData<Rgb24>(grid, W, H);
        png.SaveAsPng(path);
    }
}
