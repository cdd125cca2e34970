namespace MtlMoe.Model.Data;

/// <summary>
/// An axis-aligned box as corners (X0, Y0) top-left and (X1, Y1) bottom-right, in continuous coordinates
/// where pixel (i, j) covers [i, i+1) × [j, j+1). In pixels while it travels with an image through the
/// transforms; <see cref="Normalized"/> divides by the image size to give what the model sees:
/// (x0, y0, x1, y1) in [0, 1], origin top-left.
/// </summary>
public readonly record struct BoxF(float X0, float Y0, float X1, float Y1)
{
    /// <summary>Width (0 when degenerate).</summary>
    public float Width => MathF.Max(0, X1 - X0);

    /// <summary>Height (0 when degenerate).</summary>
    public float Height => MathF.Max(0, Y1 - Y0);

    /// <summary>Area (0 when degenerate).</summary>
    public float Area => Width * Height;

    /// <summary>From CUB's (x, y, width, height) in pixels.</summary>
    public static BoxF FromXywh(float x, float y, float w, float h) => new(x, y, x + w, y + h);

    /// <summary>Clipped to [0, width] × [0, height].</summary>
    public BoxF Clip(float width, float height)
        => new(Math.Clamp(X0, 0, width), Math.Clamp(Y0, 0, height), Math.Clamp(X1, 0, width), Math.Clamp(Y1, 0, height));

    /// <summary>Shifted by (-dx, -dy), i.e. into the frame of a crop whose top-left is (dx, dy).</summary>
    public BoxF Shift(float dx, float dy) => new(X0 - dx, Y0 - dy, X1 - dx, Y1 - dy);

    /// <summary>Scaled per axis (a resize by sx, sy).</summary>
    public BoxF Scale(float sx, float sy) => new(X0 * sx, Y0 * sy, X1 * sx, Y1 * sy);

    /// <summary>Mirrored left-right inside an image of width <paramref name="width"/>.</summary>
    public BoxF FlipX(float width) => new(width - X1, Y0, width - X0, Y1);

    /// <summary>Divided by the image size: (x0, y0, x1, y1) in [0, 1].</summary>
    public BoxF Normalized(int width, int height) => new(X0 / width, Y0 / height, X1 / width, Y1 / height);

    /// <inheritdoc/>
    public override string ToString() => FormattableString.Invariant($"({X0:0.##}, {Y0:0.##}, {X1:0.##}, {Y1:0.##})");
}
