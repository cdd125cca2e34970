using MtlMoe.Engine;
using MtlMoe.Model.Data;

namespace MtlMoe.Tests.Data;

/// <summary>
/// The box must follow the pixels: draw a white rectangle whose box is known, transform both, and compare the
/// transformed box with the extent of the transformed white pixels.
/// </summary>
public class TransformBoxTests
{
    private static BoxedImage Rectangle(int w, int h, int x0, int y0, int x1, int y1)
    {
        var img = new RgbImage(w, h);
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
                for (int c = 0; c < 3; c++) img.Pixels[(y * w + x) * 3 + c] = 255;
        return new BoxedImage(img, new BoxF(x0, y0, x1, y1));
    }

    // Extent of pixels brighter than half the rectangle's brightness, in pixel-edge coordinates.
    private static BoxF MaskExtent(RgbImage img, int threshold = 128)
    {
        int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
                if (img.Pixels[(y * img.Width + x) * 3] >= threshold)
                { minX = Math.Min(minX, x); maxX = Math.Max(maxX, x); minY = Math.Min(minY, y); maxY = Math.Max(maxY, y); }
        Assert.That(maxX, Is.GreaterThanOrEqualTo(0), "rectangle vanished");
        return new BoxF(minX, minY, maxX + 1, maxY + 1);
    }

    private static void AssertFollows(BoxedImage t, float tol = 1.01f, int threshold = 128)
    {
        var m = MaskExtent(t.Image, threshold);
        Assert.That(t.Box.X0, Is.EqualTo(m.X0).Within(tol), $"x0: box {t.Box} mask {m}");
        Assert.That(t.Box.Y0, Is.EqualTo(m.Y0).Within(tol), $"y0: box {t.Box} mask {m}");
        Assert.That(t.Box.X1, Is.EqualTo(m.X1).Within(tol), $"x1: box {t.Box} mask {m}");
        Assert.That(t.Box.Y1, Is.EqualTo(m.Y1).Within(tol), $"y1: box {t.Box} mask {m}");
    }

    [Test]
    public void FlipMirrorsTheBox()
    {
        var t = new HorizontalFlip(1.0).Apply(Rectangle(60, 40, 5, 8, 21, 30), new Rng(1));
        Assert.That(t.Box, Is.EqualTo(new BoxF(39, 8, 55, 30)));
        AssertFollows(t, 0);
        var back = new HorizontalFlip(1.0).Apply(t, new Rng(1));
        Assert.That(back.Box, Is.EqualTo(new BoxF(5, 8, 21, 30)));
    }

    [Test]
    public void ResizeScalesTheBox([Values(30, 97, 160)] int shorter)
    {
        var t = new Resize(shorter).Apply(Rectangle(80, 60, 10, 12, 50, 40), new Rng(1));
        Assert.That(t.Image.Height, Is.EqualTo(shorter));
        AssertFollows(t, 1.01f);
    }

    [Test]
    public void CropShiftsAndClipsTheBox()
    {
        var src = Rectangle(80, 60, 10, 12, 50, 40);
        var t = new CenterCrop(48, 32).Apply(src, new Rng(1));   // window (16, 14)-(64, 46)
        Assert.That(t.Box, Is.EqualTo(new BoxF(0, 0, 34, 26)));
        AssertFollows(t, 0);
        for (ulong seed = 0; seed < 20; seed++)
        {
            var r = new RandomCrop(40).Apply(src, new Rng(seed));
            if (r.Box.Area > 0) AssertFollows(r, 0);
        }
    }

    [Test]
    public void RandomResizedCropFollowsThePixels()
    {
        var src = Rectangle(90, 70, 20, 15, 70, 55);
        int checkedCount = 0;
        for (ulong seed = 0; seed < 30; seed++)
        {
            var t = new RandomResizedCrop(48, 0.3, 1.0).Apply(src, new Rng(seed));
            Assert.That((t.Image.Width, t.Image.Height), Is.EqualTo((48, 48)));
            if (t.Box.Width < 3 || t.Box.Height < 3) continue;
            AssertFollows(t, 1.6f); checkedCount++;
        }
        Assert.That(checkedCount, Is.GreaterThan(10));
    }

    [Test]
    public void TrainAndTestRecipesCarryTheBox()
    {
        var src = Rectangle(100, 75, 30, 20, 80, 60);
        for (ulong seed = 0; seed < 10; seed++)
        {
            var t = CubTransforms.Train(56, 64).Apply(src, new Rng(seed));
            Assert.That((t.Image.Width, t.Image.Height), Is.EqualTo((56, 56)));
            // Jitter changes brightness; the rectangle is still far brighter than the black ground.
            AssertFollows(t, 1.01f, threshold: 60);
        }
        var e = CubTransforms.Test(56, 64).Apply(src, new Rng(0));
        AssertFollows(e, 1.01f);
    }

    [Test]
    public void FusedResizeCropMatchesTheStepByStepResult()
    {
        var src = Rectangle(100, 75, 30, 20, 80, 60);
        for (int i = 0; i < src.Image.Pixels.Length; i++) src.Image.Pixels[i] ^= (byte)(i * 31);   // texture
        foreach (var (resize, crop) in new (IBoxTransform, IBoxTransform)[] { (new Resize(64), new RandomCrop(56)), (new Resize(40), new CenterCrop(48, 44)), (new Resize(70, 30), new RandomCrop(32)) })
        {
            var fused = new Compose(resize, crop).Apply(src, new Rng(5));
            var rng = new Rng(5);
            var steps = crop.Apply(resize.Apply(src, rng), rng);
            Assert.That(fused.Image.Pixels, Is.EqualTo(steps.Image.Pixels));
            Assert.That(fused.Box, Is.EqualTo(steps.Box));
        }
        // The whole train recipe (fused resize+crop, in-place flip and jitter) equals applying its steps one by one.
        var recipe = (Compose)CubTransforms.Train(40, 48);
        for (ulong seed = 0; seed < 6; seed++)
        {
            var whole = recipe.Apply(src, new Rng(seed));
            var rng = new Rng(seed);
            var x = src;
            foreach (var step in recipe.Steps) x = step.Apply(x, rng);
            Assert.That(whole.Image.Pixels, Is.EqualTo(x.Image.Pixels));
            Assert.That(whole.Box, Is.EqualTo(x.Box));
        }
    }

    [Test]
    public void ColorJitterWithUnitFactorsIsTheIdentityAndZeroSaturationIsGrey()
    {
        var img = Rectangle(8, 8, 2, 2, 6, 6).Image;
        for (int i = 0; i < img.Pixels.Length; i++) img.Pixels[i] = (byte)(i * 37);
        Assert.That(ImageOps.AdjustColor(img, 1, 1, 1).Pixels, Is.EqualTo(img.Pixels));
        var grey = ImageOps.AdjustColor(img, 1, 1, 0);
        for (int p = 0; p < 64; p++)
        {
            Assert.That(grey.Pixels[3 * p + 1], Is.EqualTo(grey.Pixels[3 * p]).Within(1));
            Assert.That(grey.Pixels[3 * p + 2], Is.EqualTo(grey.Pixels[3 * p]).Within(1));
        }
        var dark = ImageOps.AdjustColor(img, 0.5f, 1, 1);
        Assert.That(dark.Pixels[3 * 5 + 1], Is.EqualTo((byte)Math.Round(img.Pixels[3 * 5 + 1] * 0.5)).Within(1));
    }

    [Test]
    public void TransformsDoNotModifyTheirInput()
    {
        var src = Rectangle(40, 30, 5, 5, 20, 20);
        var copy = (byte[])src.Image.Pixels.Clone();
        CubTransforms.Train(24, 28).Apply(src, new Rng(3));
        new HorizontalFlip(1).Apply(src, new Rng(3));
        Assert.That(src.Image.Pixels, Is.EqualTo(copy));
    }

    [Test]
    public void NormalisationUsesImageNetStatistics()
    {
        var img = new RgbImage(1, 1, [255, 0, 128]);
        var dst = new float[3];
        ImageNetNorm.ToChw(img, dst);
        Assert.That(dst[0], Is.EqualTo((1 - 0.485f) / 0.229f).Within(1e-5));
        Assert.That(dst[1], Is.EqualTo(-0.456f / 0.224f).Within(1e-5));
        Assert.That(dst[2], Is.EqualTo((128 / 255f - 0.406f) / 0.225f).Within(1e-5));
    }
}
