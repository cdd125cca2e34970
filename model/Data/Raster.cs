namespace MtlMoe.Model.Data;

/// <summary>An RGB colour with components in [0, 1].</summary>
public readonly record struct Rgb(float R, float G, float B)
{
    /// <summary>Each component times <paramref name="k"/>.</summary>
    public Rgb Scale(float k) => new(R * k, G * k, B * k);

    /// <summary>Linear blend towards <paramref name="o"/> by <paramref name="t"/>.</summary>
    public Rgb Mix(Rgb o, float t) => new(R + (o.R - R) * t, G + (o.G - G) * t, B + (o.B - B) * t);

    /// <summary>From 0–255 components.</summary>
    public static Rgb Bytes(int r, int g, int b) => new(r / 255f, g / 255f, b / 255f);
}

/// <summary>
/// A small anti-aliased rasteriser into a float RGB buffer (ImageSharp.Drawing is not available): filled
/// rotated ellipses (analytic edge coverage), filled polygons and thick lines (3×3 supersampling). Shapes drawn
/// while <see cref="MaskOn"/> is set also mark a coverage mask, from which the true extent of the drawn object
/// is read back.
/// </summary>
internal sealed class Raster
{
    public readonly int Width, Height;
    public readonly float[] Rgb;     // [H, W, 3]
    public readonly byte[] Mask;     // [H, W], 1 where a masked shape covers ≥ half the pixel
    public bool MaskOn;

    public Raster(int width, int height)
    {
        Width = width; Height = height;
        Rgb = new float[width * height * 3];
        Mask = new byte[width * height];
    }

    /// <summary>Blends <paramref name="c"/> into pixel (x, y) with coverage <paramref name="a"/>.</summary>
    private void Blend(int x, int y, Rgb c, float a)
    {
        if (a <= 0) return;
        if (a > 1) a = 1;
        int p = (y * Width + x) * 3;
        Rgb[p] += (c.R - Rgb[p]) * a; Rgb[p + 1] += (c.G - Rgb[p + 1]) * a; Rgb[p + 2] += (c.B - Rgb[p + 2]) * a;
        if (MaskOn && a >= 0.5f) Mask[y * Width + x] = 1;
    }

    public void Fill(Rgb c)
    {
        for (int i = 0; i < Width * Height; i++) { Rgb[3 * i] = c.R; Rgb[3 * i + 1] = c.G; Rgb[3 * i + 2] = c.B; }
    }

    /// <summary>Vertical gradient from <paramref name="top"/> to <paramref name="bottom"/>.</summary>
    public void VerticalGradient(Rgb top, Rgb bottom)
    {
        for (int y = 0; y < Height; y++)
        {
            var c = top.Mix(bottom, Height == 1 ? 0 : (float)y / (Height - 1));
            for (int x = 0; x < Width; x++) { int p = (y * Width + x) * 3; Rgb[p] = c.R; Rgb[p + 1] = c.G; Rgb[p + 2] = c.B; }
        }
    }

    /// <summary>
    /// Ellipse centred at (cx, cy) with semi-axes (rx, ry), the rx axis at <paramref name="angle"/> radians
    /// (clockwise on screen, y down). Optional <paramref name="clip"/> keeps only pixels whose centre passes.
    /// </summary>
    public void Ellipse(float cx, float cy, float rx, float ry, float angle, Rgb c, float alpha = 1, Func<float, float, bool>? clip = null)
    {
        if (rx <= 0 || ry <= 0) return;
        float ca = MathF.Cos(angle), sa = MathF.Sin(angle);
        float ext = MathF.Sqrt(rx * rx * ca * ca + ry * ry * sa * sa) + 1, eyt = MathF.Sqrt(rx * rx * sa * sa + ry * ry * ca * ca) + 1;
        int x0 = Math.Max(0, (int)MathF.Floor(cx - ext)), x1 = Math.Min(Width - 1, (int)MathF.Ceiling(cx + ext));
        int y0 = Math.Max(0, (int)MathF.Floor(cy - eyt)), y1 = Math.Min(Height - 1, (int)MathF.Ceiling(cy + eyt));
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
            {
                float dx = x + 0.5f - cx, dy = y + 0.5f - cy;
                float u = dx * ca + dy * sa, v = -dx * sa + dy * ca;
                float qu = u / rx, qv = v / ry;
                float r = MathF.Sqrt(qu * qu + qv * qv);
                // Distance to the edge ≈ (r − 1) / |∇r|; coverage ramps over one pixel.
                float gu = qu / rx, gv = qv / ry;
                float grad = r > 1e-6f ? MathF.Sqrt(gu * gu + gv * gv) / r : 1f / MathF.Min(rx, ry);
                float cov = Math.Clamp(0.5f - (r - 1) / grad, 0, 1);
                if (cov <= 0) continue;
                if (clip is not null && !clip(x + 0.5f, y + 0.5f)) continue;
                Blend(x, y, c, cov * alpha);
            }
    }

    /// <summary>Filled polygon (even–odd rule) with 3×3 supersampling.</summary>
    public void Polygon(ReadOnlySpan<(float X, float Y)> pts, Rgb c, float alpha = 1, Func<float, float, bool>? clip = null)
    {
        if (pts.Length < 3) return;
        float minX = float.MaxValue, minY = float.MaxValue, maxX = float.MinValue, maxY = float.MinValue;
        foreach (var (px, py) in pts) { minX = MathF.Min(minX, px); maxX = MathF.Max(maxX, px); minY = MathF.Min(minY, py); maxY = MathF.Max(maxY, py); }
        int x0 = Math.Max(0, (int)MathF.Floor(minX)), x1 = Math.Min(Width - 1, (int)MathF.Ceiling(maxX));
        int y0 = Math.Max(0, (int)MathF.Floor(minY)), y1 = Math.Min(Height - 1, (int)MathF.Ceiling(maxY));
        var poly = pts.ToArray();
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
            {
                int hits = 0;
                for (int sy = 0; sy < 3; sy++)
                    for (int sx = 0; sx < 3; sx++)
                        if (Inside(poly, x + (sx + 0.5f) / 3, y + (sy + 0.5f) / 3)) hits++;
                if (hits == 0) continue;
                if (clip is not null && !clip(x + 0.5f, y + 0.5f)) continue;
                Blend(x, y, c, hits / 9f * alpha);
            }
    }

    private static bool Inside((float X, float Y)[] p, float x, float y)
    {
        bool inside = false;
        for (int i = 0, j = p.Length - 1; i < p.Length; j = i++)
            if ((p[i].Y > y) != (p[j].Y > y) && x < (p[j].X - p[i].X) * (y - p[i].Y) / (p[j].Y - p[i].Y) + p[i].X)
                inside = !inside;
        return inside;
    }

    /// <summary>A line of width <paramref name="thickness"/> with round caps.</summary>
    public void Line(float xa, float ya, float xb, float yb, float thickness, Rgb c, float alpha = 1)
    {
        float dx = xb - xa, dy = yb - ya, len = MathF.Sqrt(dx * dx + dy * dy);
        float h = thickness / 2;
        if (len > 1e-4f)
        {
            float nx = -dy / len * h, ny = dx / len * h;
            Polygon([(xa + nx, ya + ny), (xb + nx, yb + ny), (xb - nx, yb - ny), (xa - nx, ya - ny)], c, alpha);
        }
        Ellipse(xa, ya, h, h, 0, c, alpha);
        Ellipse(xb, yb, h, h, 0, c, alpha);
    }

    /// <summary>Axis-aligned rectangle outline of the given thickness (pixels), for drawing boxes.</summary>
    public void RectOutline(float x0, float y0, float x1, float y1, float thickness, Rgb c)
    {
        Polygon([(x0, y0), (x1, y0), (x1, y0 + thickness), (x0, y0 + thickness)], c);
        Polygon([(x0, y1 - thickness), (x1, y1 - thickness), (x1, y1), (x0, y1)], c);
        Polygon([(x0, y0), (x0 + thickness, y0), (x0 + thickness, y1), (x0, y1)], c);
        Polygon([(x1 - thickness, y0), (x1, y0), (x1, y1), (x1 - thickness, y1)], c);
    }

    /// <summary>The bounding box of the mask in pixel-edge coordinates, or null when empty.</summary>
    public BoxF? MaskExtent()
    {
        int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
                if (Mask[y * Width + x] != 0)
                {
                    if (x < minX) minX = x; if (x > maxX) maxX = x;
                    if (y < minY) minY = y; if (y > maxY) maxY = y;
                }
        return maxX < 0 ? null : new BoxF(minX, minY, maxX + 1, maxY + 1);
    }

    /// <summary>To 8-bit RGB (clamped, rounded).</summary>
    public RgbImage ToImage()
    {
        var b = new byte[Rgb.Length];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)Math.Clamp((int)(Rgb[i] * 255f + 0.5f), 0, 255);
        return new RgbImage(Width, Height, b);
    }
}
