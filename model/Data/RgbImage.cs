namespace MtlMoe.Model.Data;

/// <summary>
/// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B (HWC). Transforms treat instances as
/// immutable: they return a new image (or the same one, untouched), so decoded images can be cached and shared
/// between worker threads.
/// </summary>
public sealed class RgbImage
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Pixel bytes, length Width * Height * 3, index (y * Width + x) * 3 + channel.</summary>
    public byte[] Pixels { get; }

    /// <summary>Wraps <paramref name="pixels"/> (not copied).</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"rgb_image: size {width}x{height} must be positive");
        if (pixels.Length != checked(width * height * 3))
            throw new ArgumentException($"rgb_image: {pixels.Length} bytes do not fill {width}x{height}x3");
        Width = width; Height = height; Pixels = pixels;
    }

    /// <summary>A black image.</summary>
    public RgbImage(int width, int height) : this(width, height, new byte[checked(width * height * 3)]) { }

    /// <summary>Bytes held (for cache accounting).</summary>
    public long ByteSize => Pixels.LongLength;
}
