using MtlMoe.Model.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace MtlMoe.Tests.Data;

public class ImageDecodeTests
{
    [Test]
    public void GrayscaleJpegDecodesToRgb()
    {
        var path = Path.Combine(TestSets.NewTempDir(), "gray.jpg");
        var gray = new byte[32 * 16];
        for (int i = 0; i < gray.Length; i++) gray[i] = (byte)(i % 32 * 8);
        using (var img = Image.LoadPixelData<L8>(gray, 32, 16)) img.SaveAsJpeg(path);
        var rgb = ImageLoader.Default.Load(path);
        Assert.That((rgb.Width, rgb.Height), Is.EqualTo((32, 16)));
        for (int p = 0; p < 32 * 16; p++)
        {
            Assert.That(rgb.Pixels[3 * p + 1], Is.EqualTo(rgb.Pixels[3 * p]), "G == R");
            Assert.That(rgb.Pixels[3 * p + 2], Is.EqualTo(rgb.Pixels[3 * p]), "B == R");
        }
        Assert.That(rgb.Pixels[3 * 31], Is.GreaterThan(200)); // the ramp survived
    }

    [Test]
    public void PngRoundTripsExactly()
    {
        var path = Path.Combine(TestSets.NewTempDir(), "x.png");
        var px = new byte[5 * 4 * 3];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(i * 7);
        using (var img = Image.LoadPixelData<Rgb24>(px, 5, 4)) img.SaveAsPng(path);
        Assert.That(ImageLoader.Default.Load(path).Pixels, Is.EqualTo(px));
        Assert.That(ImageLoader.Default.ReadSize(path), Is.EqualTo((5, 4)));
    }

    [Test]
    public void DecoderMemoryCapGivesAnErrorNamingTheFile()
    {
        // Under the pixel limit, but its pixel buffer (2000·2000·3 bytes) is over a 1 MiB allocator cap.
        var path = Path.Combine(TestSets.NewTempDir(), "big.png");
        File.WriteAllBytes(path, CraftedImages.PngHeader(2000, 2000, padding: 12_000));   // ≥ 2000·6001/1032 bytes: not refused as too small
        var loader = new ImageLoader(new DecodeLimits { MaxPixels = 10_000_000, MaxDecoderMemoryMegabytes = 1 });
        var e = Assert.Throws<CubFormatException>(() => loader.Load(path))!;
        Assert.That(e.Message, Does.StartWith(path + ": decoding needs more memory than the cap of 1 MiB"));
    }

    [Test]
    public void HugeHeaderIsRejectedBeforeDecoding()
    {
        var path = Path.Combine(TestSets.NewTempDir(), "huge.png");
        File.WriteAllBytes(path, CraftedImages.PngHeader(100_000, 100_000));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<CubFormatException>(() => ImageLoader.Default.Load(path))!;
        Assert.That(e.Message, Does.Contain("100000x100000"));
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(16 << 20));
    }

    [Test]
    public void MissingFileIsNamed()
    {
        var path = Path.Combine(TestSets.NewTempDir(), "nope.jpg");
        var e = Assert.Throws<CubFormatException>(() => ImageLoader.Default.Load(path))!;
        Assert.That(e.Message, Does.StartWith(path + ": cannot read image file"));
    }

    [Test]
    public void APngTooSmallForItsHeaderIsRefusedBeforeDecoding()
    {
        var path = Path.Combine(TestSets.NewTempDir(), "small.png");
        File.WriteAllBytes(path, CraftedImages.PngHeader(2000, 2000));
        var e = Assert.Throws<CubFormatException>(() => ImageLoader.Default.Load(path))!;
        Assert.That(e.What, Does.EndWith("fewer than the 11629 any complete PNG of 2000x2000 pixels needs: truncated or crafted (not decoded)"));
    }
}
