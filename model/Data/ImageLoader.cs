using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.PixelFormats;

namespace MtlMoe.Model.Data;

/// <summary>Limits applied before and during decoding so a crafted file cannot cause a runaway allocation.</summary>
public sealed record DecodeLimits
{
    /// <summary>Largest width × height accepted, checked from the header before any pixel is decoded (default 40 M).</summary>
    public long MaxPixels { get; init; } = 40_000_000;

    /// <summary>What to add to the over-the-limit message (e.g. the option that raises it); empty by default.</summary>
    public string LimitHint { get; init; } = "";

    /// <summary>Largest single decoder allocation in MiB (ImageSharp's allocator limit; default 512).</summary>
    public int MaxDecoderMemoryMegabytes { get; init; } = 512;

    /// <summary>The defaults.</summary>
    public static DecodeLimits Default { get; } = new();
}

/// <summary>
/// Decodes JPEG/PNG/BMP/GIF files into <see cref="RgbImage"/> (grayscale and palette images become RGB) with
/// ImageSharp 2.1.13, under <see cref="DecodeLimits"/>. Every failure is a <see cref="CubFormatException"/>
/// naming the file. Thread-safe.
/// </summary>
public sealed class ImageLoader
{
    private readonly Configuration _config;

    /// <summary>The limits in force.</summary>
    public DecodeLimits Limits { get; }

    /// <summary>A loader with <paramref name="limits"/> (defaults when null).</summary>
    public ImageLoader(DecodeLimits? limits = null)
    {
        Limits = limits ?? DecodeLimits.Default;
        _config = Configuration.Default.Clone();
        // The allocator refuses any buffer above the cap, so a decoder cannot be talked into a huge allocation.
        _config.MemoryAllocator = MemoryAllocator.Create(new MemoryAllocatorOptions
        {
            AllocationLimitMegabytes = Limits.MaxDecoderMemoryMegabytes,
        });
        _config.MaxDegreeOfParallelism = 1; // the pipeline parallelises across images
    }

    /// <summary>Shared loader with the default limits.</summary>
    public static ImageLoader Default { get; } = new();

    /// <summary>Reads only the header: (width, height). Throws when the file is not an image or exceeds <see cref="DecodeLimits.MaxPixels"/>.</summary>
    public (int Width, int Height) ReadSize(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
            return CheckHeader(fs, fs.Length, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CubFormatException(path, 0, $"cannot read image file ({e.Message})", inner: e);
        }
    }

    /// <summary>Decodes the file at <paramref name="path"/>.</summary>
    public RgbImage Load(string path) => Decode(ReadAll(path), path);

    /// <summary>Decodes encoded bytes; <paramref name="name"/> is used in error messages.</summary>
    public RgbImage Decode(byte[] bytes, string name)
    {
        using (var ms = new MemoryStream(bytes, writable: false)) CheckHeader(ms, bytes.Length, name);
        if (IsJpeg(bytes) && !HasJpegEnd(bytes))
            throw new CubFormatException(name, 0, $"truncated or corrupt image (JPEG has no end-of-image marker; {bytes.Length} bytes)");
        try
        {
            using var img = Image.Load<Rgb24>(_config, bytes);
            int w = img.Width, h = img.Height;
            var pixels = new byte[checked(w * h * 3)];
            img.CopyPixelDataTo(pixels);
            return new RgbImage(w, h, pixels);
        }
        catch (CubFormatException) { throw; }
        catch (Exception e) when (e is InvalidMemoryOperationException || e.InnerException is InvalidMemoryOperationException)
        {
            throw new CubFormatException(name, 0, $"decoding needs more memory than the cap of {Limits.MaxDecoderMemoryMegabytes} MiB ({e.Message})", inner: e);
        }
        catch (Exception e) when (e is ImageFormatException or UnknownImageFormatException or InvalidImageContentException
                                     or NotSupportedException or IndexOutOfRangeException or ArgumentException or InvalidOperationException
                                     or EndOfStreamException or OutOfMemoryException)
        {
            throw new CubFormatException(name, 0, $"truncated or corrupt image ({e.GetType().Name}: {e.Message})", inner: e);
        }
    }

    private (int, int) CheckHeader(Stream stream, long length, string name)
    {
        IImageInfo? info;
        IImageFormat? format;
        try { info = Image.Identify(_config, stream, out format); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CubFormatException(name, 0, $"unreadable image header ({e.GetType().Name}: {e.Message})", inner: e);
        }
        if (info is null)
            throw new CubFormatException(name, 0, $"not a recognised image format ({length} bytes)");
        long pixels = (long)info.Width * info.Height;
        if (info.Width <= 0 || info.Height <= 0)
            throw new CubFormatException(name, 0, $"image header gives an empty size {info.Width}x{info.Height}");
        if (pixels > Limits.MaxPixels)
            throw new CubFormatException(name, 0, $"image header claims {info.Width}x{info.Height} = {pixels} pixels, over the limit of {Limits.MaxPixels}{Limits.LimitHint}");
        long least = LeastBytes(format, info);
        if (length < least)
            throw new CubFormatException(name, 0, $"the file has {length} bytes, fewer than the {least} any complete {format!.Name} of {info.Width}x{info.Height} pixels needs: truncated or crafted (not decoded)");
        return (info.Width, info.Height);
    }

    /// <summary>
    /// A lower bound on the size of a complete file of this format and size, so a small file claiming a huge image
    /// (a decompression bomb, or a truncated file a decoder would pad with grey) is refused before any pixel is
    /// allocated. JPEG (Huffman-coded, all ImageSharp decodes): every 8×8 luminance block costs at least one bit.
    /// PNG: deflate expands at most 1032:1, and the raw data is one filter byte plus the packed pixels per row.
    /// </summary>
    private static long LeastBytes(IImageFormat? format, IImageInfo info)
    {
        long w = info.Width, h = info.Height;
        return format?.Name switch
        {
            "JPEG" => (w + 7) / 8 * ((h + 7) / 8) / 8,
            "PNG" => h * (1 + (w * Math.Max(1, info.PixelType.BitsPerPixel) + 7) / 8) / 1032,
            _ => 0,
        };
    }

    private static bool IsJpeg(byte[] b) => b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;

    // A complete JPEG ends with EOI (FF D9); some writers append a little padding, so look near the end.
    private static bool HasJpegEnd(byte[] b)
    {
        int stop = Math.Max(2, b.Length - 4096);
        for (int i = b.Length - 2; i >= stop; i--)
            if (b[i] == 0xFF && b[i + 1] == 0xD9) return true;
        return false;
    }

    private static byte[] ReadAll(string path)
    {
        try { return System.IO.File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CubFormatException(path, 0, $"cannot read image file ({e.Message})", inner: e);
        }
    }
}
