using MtlMoe.Engine;

namespace MtlMoe.Model.Data;

/// <summary>An image with its box in pixels of that image (see <see cref="BoxF"/>).</summary>
public readonly record struct BoxedImage(RgbImage Image, BoxF Box);

/// <summary>
/// One augmentation step. Every geometric transform carries the box: a resize scales it, a flip mirrors it,
/// a crop shifts it and clips it to the crop (a bird cropped away entirely leaves a zero-area box).
/// Implementations never modify their input image, and draw all randomness from <c>rng</c>.
/// </summary>
public interface IBoxTransform
{
    /// <summary>Applies the step.</summary>
    BoxedImage Apply(BoxedImage input, Rng rng);
}

/// <summary>Resize to a fixed size, or so the shorter side equals <see cref="ShorterSide"/> (aspect kept).</summary>
public sealed class Resize : IBoxTransform
{
    /// <summary>Target shorter side (when &gt; 0).</summary>
    public int ShorterSide { get; }
    /// <summary>Fixed target width (when &gt; 0).</summary>
    public int Width { get; }
    /// <summary>Fixed target height (when &gt; 0).</summary>
    public int Height { get; }

    /// <summary>Shorter side to <paramref name="shorterSide"/>, like torchvision's Resize(int).</summary>
    public Resize(int shorterSide) { if (shorterSide <= 0) throw new ArgumentException("resize: size must be positive"); ShorterSide = shorterSide; }

    /// <summary>To exactly <paramref name="width"/> × <paramref name="height"/>.</summary>
    public Resize(int width, int height) { if (width <= 0 || height <= 0) throw new ArgumentException("resize: size must be positive"); Width = width; Height = height; }

    /// <inheritdoc/>
    public BoxedImage Apply(BoxedImage input, Rng rng)
    {
        var (w, h) = TargetSize(input.Image.Width, input.Image.Height);
        return Apply(input, w, h);
    }

    /// <summary>The output size for an input of <paramref name="width"/> × <paramref name="height"/>.</summary>
    public (int Width, int Height) TargetSize(int width, int height)
    {
        if (ShorterSide <= 0) return (Width, Height);
        return width <= height
            ? (ShorterSide, (int)Math.Round((double)height * ShorterSide / width))
            : ((int)Math.Round((double)width * ShorterSide / height), ShorterSide);
    }

    internal static BoxedImage Apply(BoxedImage input, int w, int h)
    {
        var img = input.Image;
        return new BoxedImage(ImageOps.Resize(img, w, h), input.Box.Scale((float)w / img.Width, (float)h / img.Height));
    }
}

/// <summary>A crop whose window depends only on the input size (and the RNG), so it can be fused with a preceding resize.</summary>
internal interface IWindowCrop
{
    /// <summary>Draws the window for an input of <paramref name="width"/> × <paramref name="height"/>.</summary>
    (int Left, int Top, int Width, int Height) Window(int width, int height, Rng rng);
}

/// <summary>Crop helpers shared by the crop transforms.</summary>
internal static class CropBox
{
    public static BoxedImage Apply(BoxedImage input, IWindowCrop crop, Rng rng)
    {
        var (l, t, w, h) = crop.Window(input.Image.Width, input.Image.Height, rng);
        return Apply(input, l, t, w, h);
    }

    public static BoxedImage Apply(BoxedImage input, int left, int top, int width, int height)
        => new(ImageOps.Crop(input.Image, left, top, width, height), input.Box.Shift(left, top).Clip(width, height));
}

/// <summary>The central <see cref="Width"/> × <see cref="Height"/> window (black padding if the image is smaller).</summary>
public sealed class CenterCrop(int width, int height) : IBoxTransform, IWindowCrop
{
    /// <summary>Crop width.</summary>
    public int Width { get; } = width;
    /// <summary>Crop height.</summary>
    public int Height { get; } = height;

    /// <summary>A square crop.</summary>
    public CenterCrop(int size) : this(size, size) { }

    /// <inheritdoc/>
    public BoxedImage Apply(BoxedImage input, Rng rng) => CropBox.Apply(input, this, rng);

    (int, int, int, int) IWindowCrop.Window(int width, int height, Rng rng)
        => ((int)Math.Round((width - Width) / 2.0), (int)Math.Round((height - Height) / 2.0), Width, Height);
}

/// <summary>A window at a uniformly random position (black padding if the image is smaller).</summary>
public sealed class RandomCrop(int width, int height) : IBoxTransform, IWindowCrop
{
    /// <summary>Crop width.</summary>
    public int Width { get; } = width;
    /// <summary>Crop height.</summary>
    public int Height { get; } = height;

    /// <summary>A square crop.</summary>
    public RandomCrop(int size) : this(size, size) { }

    /// <inheritdoc/>
    public BoxedImage Apply(BoxedImage input, Rng rng) => CropBox.Apply(input, this, rng);

    (int, int, int, int) IWindowCrop.Window(int width, int height, Rng rng)
    {
        int left = Offset(width - Width, rng), top = Offset(height - Height, rng);
        return (left, top, Width, Height);
    }

    // Slack < 0 (image smaller than the crop) centres it instead.
    private static int Offset(int slack, Rng rng) => slack >= 0 ? rng.NextInt(slack + 1) : slack / 2;
}

/// <summary>
/// torchvision's RandomResizedCrop: a window of random area fraction in <see cref="Scale"/> and aspect ratio
/// (log-uniform) in <see cref="Ratio"/>, resized to <see cref="Size"/> × <see cref="Size"/>; after 10 failed
/// draws it falls back to the central crop with the ratio clamped.
/// </summary>
public sealed class RandomResizedCrop(int size, double minScale = 0.08, double maxScale = 1.0, double minRatio = 3.0 / 4, double maxRatio = 4.0 / 3) : IBoxTransform
{
    /// <summary>Output side.</summary>
    public int Size { get; } = size;
    /// <summary>Area fraction range.</summary>
    public (double Min, double Max) Scale { get; } = (minScale, maxScale);
    /// <summary>Aspect ratio (w/h) range.</summary>
    public (double Min, double Max) Ratio { get; } = (minRatio, maxRatio);

    /// <inheritdoc/>
    public BoxedImage Apply(BoxedImage input, Rng rng)
    {
        int W = input.Image.Width, H = input.Image.Height;
        double area = (double)W * H;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * rng.Uniform(Scale.Min, Scale.Max);
            double ratio = Math.Exp(rng.Uniform(Math.Log(Ratio.Min), Math.Log(Ratio.Max)));
            int w = (int)Math.Round(Math.Sqrt(target * ratio)), h = (int)Math.Round(Math.Sqrt(target / ratio));
            if (w > 0 && h > 0 && w <= W && h <= H)
            {
                int top = rng.NextInt(H - h + 1), left = rng.NextInt(W - w + 1);
                return Resize.Apply(CropBox.Apply(input, left, top, w, h), Size, Size);
            }
        }
        double r = (double)W / H;
        int cw = W, ch = H;
        if (r < Ratio.Min) ch = (int)Math.Round(W / Ratio.Min);
        else if (r > Ratio.Max) cw = (int)Math.Round(H * Ratio.Max);
        return Resize.Apply(CropBox.Apply(input, (W - cw) / 2, (H - ch) / 2, cw, ch), Size, Size);
    }
}

/// <summary>A step that can overwrite an image nobody else holds (used by <see cref="Compose"/> on its own intermediates).</summary>
internal interface IInPlaceTransform
{
    /// <summary>Same result and RNG draws as <see cref="IBoxTransform.Apply"/>, but may modify <c>input.Image</c>.</summary>
    BoxedImage ApplyInPlace(BoxedImage input, Rng rng);
}

/// <summary>Mirrors left-right with probability <see cref="P"/> (the box mirrors too).</summary>
public sealed class HorizontalFlip(double p = 0.5) : IBoxTransform, IInPlaceTransform
{
    /// <summary>Flip probability.</summary>
    public double P { get; } = p;

    /// <inheritdoc/>
    public BoxedImage Apply(BoxedImage input, Rng rng)
        => rng.NextDouble() < P ? new BoxedImage(ImageOps.FlipX(input.Image), input.Box.FlipX(input.Image.Width)) : input;

    BoxedImage IInPlaceTransform.ApplyInPlace(BoxedImage input, Rng rng)
    {
        if (!(rng.NextDouble() < P)) return input;
        ImageOps.FlipXInPlace(input.Image);
        return new BoxedImage(input.Image, input.Box.FlipX(input.Image.Width));
    }
}

/// <summary>Random brightness, contrast and saturation factors, each uniform in [1 − j, 1 + j]; the box is untouched.</summary>
public sealed class ColorJitter(double brightness = 0.4, double contrast = 0.4, double saturation = 0.4) : IBoxTransform, IInPlaceTransform
{
    /// <summary>Brightness jitter j.</summary>
    public double Brightness { get; } = brightness;
    /// <summary>Contrast jitter j.</summary>
    public double Contrast { get; } = contrast;
    /// <summary>Saturation jitter j.</summary>
    public double Saturation { get; } = saturation;

    /// <inheritdoc/>
    public BoxedImage Apply(BoxedImage input, Rng rng)
    {
        var (b, c, s) = Draw(rng);
        return new BoxedImage(ImageOps.AdjustColor(input.Image, b, c, s), input.Box);
    }

    BoxedImage IInPlaceTransform.ApplyInPlace(BoxedImage input, Rng rng)
    {
        var (b, c, s) = Draw(rng);
        ImageOps.AdjustColor(input.Image, input.Image, b, c, s);
        return input;
    }

    private (float, float, float) Draw(Rng rng)
        => ((float)rng.Uniform(1 - Brightness, 1 + Brightness), (float)rng.Uniform(1 - Contrast, 1 + Contrast), (float)rng.Uniform(1 - Saturation, 1 + Saturation));
}

/// <summary>Steps applied in order.</summary>
public sealed class Compose(params IBoxTransform[] steps) : IBoxTransform
{
    /// <summary>The steps.</summary>
    public IReadOnlyList<IBoxTransform> Steps { get; } = steps;

    /// <inheritdoc/>
    public BoxedImage Apply(BoxedImage input, Rng rng)
    {
        var original = input.Image;
        for (int i = 0; i < Steps.Count; i++)
        {
            // A resize followed by a crop computes only the cropped window (same pixels, same RNG draws).
            if (Steps[i] is Resize r && i + 1 < Steps.Count && Steps[i + 1] is IWindowCrop crop)
            {
                var img = input.Image;
                var (w, h) = r.TargetSize(img.Width, img.Height);
                var (l, t, cw, ch) = crop.Window(w, h, rng);
                var box = input.Box.Scale((float)w / img.Width, (float)h / img.Height).Shift(l, t).Clip(cw, ch);
                input = new BoxedImage(ImageOps.ResizeWindow(img, w, h, l, t, cw, ch), box);
                i++;
                continue;
            }
            // Images made by earlier steps of this call belong to nobody else, so they may be overwritten.
            bool owned = !ReferenceEquals(input.Image, original);
            input = owned && Steps[i] is IInPlaceTransform inPlace ? inPlace.ApplyInPlace(input, rng) : Steps[i].Apply(input, rng);
        }
        return input;
    }
}

/// <summary>The standard CUB-200 fine-grained recipes.</summary>
public static class CubTransforms
{
    /// <summary>
    /// Train: resize shorter side to <paramref name="resize"/>, random <paramref name="crop"/>² crop, flip p = 0.5,
    /// colour jitter <paramref name="jitter"/> on brightness, contrast and saturation (none when 0).
    /// </summary>
    public static IBoxTransform Train(int crop = 448, int resize = 512, double jitter = 0.4)
        => jitter > 0
            ? new Compose(new Resize(resize), new RandomCrop(crop), new HorizontalFlip(0.5), new ColorJitter(jitter, jitter, jitter))
            : new Compose(new Resize(resize), new RandomCrop(crop), new HorizontalFlip(0.5));

    /// <summary>Test: resize shorter side to <paramref name="resize"/>, central <paramref name="crop"/>² crop.</summary>
    public static IBoxTransform Test(int crop = 448, int resize = 512)
        => new Compose(new Resize(resize), new CenterCrop(crop));

    /// <summary>
    /// Maps a box normalised to the centre crop of <see cref="Test"/> (what the model predicts) back to pixels of the
    /// original <paramref name="width"/> × <paramref name="height"/> image, clipped to it.
    /// </summary>
    public static BoxF TestCropToOriginal(BoxF normalized, int width, int height, int crop, int resize)
    {
        var (rw, rh) = new Resize(resize).TargetSize(width, height);
        // The same window CenterCrop takes from the resized image.
        double left = Math.Round((rw - crop) / 2.0), top = Math.Round((rh - crop) / 2.0);
        double sx = (double)width / rw, sy = (double)height / rh;
        float X(float v) => (float)((v * crop + left) * sx);
        float Y(float v) => (float)((v * crop + top) * sy);
        return new BoxF(X(normalized.X0), Y(normalized.Y0), X(normalized.X1), Y(normalized.Y1)).Clip(width, height);
    }

    /// <summary>The resize that goes with a crop in the usual 512 → 448 proportion (e.g. 224 → 256).</summary>
    public static int ResizeFor(int crop) => (int)Math.Round(crop * 512.0 / 448.0);
}

/// <summary>ImageNet channel statistics (torchvision pretrained weights expect inputs normalised by them).</summary>
public static class ImageNetNorm
{
    /// <summary>Per-channel mean (R, G, B) of [0, 1] pixels.</summary>
    public static readonly float[] Mean = [0.485f, 0.456f, 0.406f];
    /// <summary>Per-channel standard deviation (R, G, B).</summary>
    public static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    /// <summary>Writes <paramref name="img"/> as normalised CHW floats ((p / 255 − mean) / std) into <paramref name="dst"/> (length 3·H·W).</summary>
    public static void ToChw(RgbImage img, Span<float> dst)
    {
        int n = img.Width * img.Height;
        if (dst.Length != 3 * n) throw new ArgumentException($"to_chw: destination of {dst.Length} floats for a {img.Width}x{img.Height} image");
        var s = img.Pixels;
        for (int c = 0; c < 3; c++)
        {
            float scale = 1f / (255f * Std[c]), shift = Mean[c] / Std[c];
            var plane = dst.Slice(c * n, n);
            for (int i = 0; i < n; i++) plane[i] = s[3 * i + c] * scale - shift;
        }
    }
}
