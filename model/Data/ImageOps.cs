namespace MtlMoe.Model.Data;

/// <summary>Pixel-level primitives on <see cref="RgbImage"/>; each returns a new image.</summary>
public static class ImageOps
{
    /// <summary>
    /// Bilinear resize to <paramref name="width"/> × <paramref name="height"/> with pixel centres aligned
    /// (source x = (x + 0.5) · srcW / dstW − 0.5), so a box scales by exactly (dstW / srcW, dstH / srcH).
    /// Downscales by 4× or more first average 2×2 blocks (limits aliasing; an odd last row/column is dropped).
    /// </summary>
    public static RgbImage Resize(RgbImage src, int width, int height) => ResizeWindow(src, width, height, 0, 0, width, height);

    /// <summary>
    /// The window (<paramref name="left"/>, <paramref name="top"/>, <paramref name="cropW"/> × <paramref name="cropH"/>)
    /// of <c>Resize(src, width, height)</c>, computed without the rest of the resized image; pixels outside it are
    /// black. Bit-identical to <c>Crop(Resize(src, width, height), left, top, cropW, cropH)</c>.
    /// </summary>
    public static RgbImage ResizeWindow(RgbImage src, int width, int height, int left, int top, int cropW, int cropH)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"resize: target {width}x{height} must be positive");
        if (cropW <= 0 || cropH <= 0) throw new ArgumentException($"resize: window {cropW}x{cropH} must be positive");
        while (src.Width >= 2 * width * 2 && src.Height >= 2 * height * 2) src = Halve(src);
        if (width == src.Width && height == src.Height) return left == 0 && top == 0 && cropW == width && cropH == height ? src : Crop(src, left, top, cropW, cropH);
        int sw = src.Width, sh = src.Height;
        var x0 = new int[width]; var x1 = new int[width]; var fx = new float[width];
        Coeffs(sw, width, x0, x1, fx);
        var y0 = new int[height]; var y1 = new int[height]; var fy = new float[height];
        Coeffs(sh, height, y0, y1, fy);
        var dst = new byte[checked(cropW * cropH * 3)];
        var s = src.Pixels;
        int xa = Math.Max(0, left), xb = Math.Min(width, left + cropW);
        for (int y = Math.Max(0, top); y < Math.Min(height, top + cropH); y++)
        {
            int r0 = y0[y] * sw * 3, r1 = y1[y] * sw * 3;
            float wy = fy[y];
            int o = ((y - top) * cropW + (xa - left)) * 3;
            for (int x = xa; x < xb; x++)
            {
                int a = x0[x] * 3, b = x1[x] * 3;
                float wx = fx[x];
                for (int c = 0; c < 3; c++)
                {
                    float top0 = s[r0 + a + c] + (s[r0 + b + c] - s[r0 + a + c]) * wx;
                    float bot = s[r1 + a + c] + (s[r1 + b + c] - s[r1 + a + c]) * wx;
                    dst[o++] = (byte)(top0 + (bot - top0) * wy + 0.5f);
                }
            }
        }
        return new RgbImage(cropW, cropH, dst);
    }

    private static void Coeffs(int src, int dst, int[] i0, int[] i1, float[] f)
    {
        double scale = (double)src / dst;
        for (int i = 0; i < dst; i++)
        {
            double s = Math.Clamp((i + 0.5) * scale - 0.5, 0, src - 1);
            int lo = (int)s;
            i0[i] = lo; i1[i] = Math.Min(lo + 1, src - 1); f[i] = (float)(s - lo);
        }
    }

    private static RgbImage Halve(RgbImage src)
    {
        int w = src.Width / 2, h = src.Height / 2, sw = src.Width;
        var d = new byte[w * h * 3];
        var s = src.Pixels;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                {
                    int p = ((2 * y) * sw + 2 * x) * 3 + c;
                    d[(y * w + x) * 3 + c] = (byte)((s[p] + s[p + 3] + s[p + sw * 3] + s[p + sw * 3 + 3] + 2) >> 2);
                }
        return new RgbImage(w, h, d);
    }

    /// <summary>The window with top-left (<paramref name="left"/>, <paramref name="top"/>); parts outside the source are black.</summary>
    public static RgbImage Crop(RgbImage src, int left, int top, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"crop: size {width}x{height} must be positive");
        var dst = new byte[checked(width * height * 3)];
        int xa = Math.Max(0, left), xb = Math.Min(src.Width, left + width);
        if (xb <= xa) return new RgbImage(width, height, dst);
        for (int y = 0; y < height; y++)
        {
            int sy = top + y;
            if (sy < 0 || sy >= src.Height) continue;
            Buffer.BlockCopy(src.Pixels, (sy * src.Width + xa) * 3, dst, (y * width + (xa - left)) * 3, (xb - xa) * 3);
        }
        return new RgbImage(width, height, dst);
    }

    /// <summary>Mirrored left-right.</summary>
    public static RgbImage FlipX(RgbImage src)
    {
        var d = new RgbImage(src.Width, src.Height, (byte[])src.Pixels.Clone());
        FlipXInPlace(d);
        return d;
    }

    /// <summary>Mirrors <paramref name="img"/> left-right in place.</summary>
    internal static void FlipXInPlace(RgbImage img)
    {
        int w = img.Width;
        var p = img.Pixels;
        for (int y = 0; y < img.Height; y++)
        {
            int row = y * w * 3;
            for (int x = 0; x < w / 2; x++)
            {
                int a = row + x * 3, b = row + (w - 1 - x) * 3;
                (p[a], p[b]) = (p[b], p[a]); (p[a + 1], p[b + 1]) = (p[b + 1], p[a + 1]); (p[a + 2], p[b + 2]) = (p[b + 2], p[a + 2]);
            }
        }
    }

    /// <summary>
    /// Colour adjustment: brightness multiplies, contrast blends with the mean grey level, saturation blends with
    /// each pixel's grey (ITU-R 601 luma), in that order; factors of 1 leave the image unchanged.
    /// </summary>
    public static RgbImage AdjustColor(RgbImage src, float brightness, float contrast, float saturation)
    {
        var d = new RgbImage(src.Width, src.Height);
        AdjustColor(src, d, brightness, contrast, saturation);
        return d;
    }

    /// <summary><see cref="AdjustColor(RgbImage, float, float, float)"/> into <paramref name="dstImg"/> (may be <paramref name="src"/> itself).</summary>
    internal static void AdjustColor(RgbImage src, RgbImage dstImg, float brightness, float contrast, float saturation)
    {
        var s = src.Pixels;
        int n = src.Width * src.Height;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += 0.299 * s[3 * i] + 0.587 * s[3 * i + 1] + 0.114 * s[3 * i + 2];
        float meanGray = (float)(sum / n) * brightness;
        // All three steps are affine in (r, g, b), so they fold into out = M · in + t, clamped once at the end.
        float k = brightness * contrast, off = meanGray * (1 - contrast);
        ReadOnlySpan<float> luma = [0.299f, 0.587f, 0.114f];
        Span<float> m = stackalloc float[9];
        for (int o = 0; o < 3; o++)
            for (int i = 0; i < 3; i++) m[o * 3 + i] = k * ((1 - saturation) * luma[i] + (o == i ? saturation : 0));
        float t = off;   // the offset is grey, and saturation leaves grey unchanged
        var d = dstImg.Pixels;
        for (int i = 0; i < n; i++)
        {
            float r = s[3 * i], g = s[3 * i + 1], b = s[3 * i + 2];
            d[3 * i] = ToByte(m[0] * r + m[1] * g + m[2] * b + t);
            d[3 * i + 1] = ToByte(m[3] * r + m[4] * g + m[5] * b + t);
            d[3 * i + 2] = ToByte(m[6] * r + m[7] * g + m[8] * b + t);
        }
    }

    private static byte ToByte(float v) => (byte)Math.Clamp((int)(v + 0.5f), 0, 255);
}
