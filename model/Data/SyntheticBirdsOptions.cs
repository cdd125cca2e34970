namespace MtlMoe.Model.Data;

/// <summary>Size and seed of a synthetic birds set.</summary>
public sealed record SyntheticBirdsOptions
{
    /// <summary>Number of classes (default 20: four families of five sibling species).</summary>
    public int Classes { get; init; } = 20;

    /// <summary>Images per class (default 60).</summary>
    public int ImagesPerClass { get; init; } = 60;

    /// <summary>Image width in pixels (default 256).</summary>
    public int Width { get; init; } = 256;

    /// <summary>Image height in pixels (default 256).</summary>
    public int Height { get; init; } = 256;

    /// <summary>Fraction of each class in the train split (default 0.5, like CUB's ~30 train images per class).</summary>
    public double TrainFraction { get; init; } = 0.5;

    /// <summary>Seed; the whole set is a pure function of these options.</summary>
    public ulong Seed { get; init; } = 2011;

    /// <summary>JPEG quality of written files (default 90).</summary>
    public int JpegQuality { get; init; } = 90;

    /// <summary>Throws when out of range.</summary>
    public void Validate()
    {
        if (Classes < 1 || Classes > 999) throw new ArgumentException($"synthetic_birds: classes {Classes} must be in 1..999");
        if (ImagesPerClass < 1) throw new ArgumentException($"synthetic_birds: images per class {ImagesPerClass} must be positive");
        if (Width < 16 || Height < 16) throw new ArgumentException($"synthetic_birds: resolution {Width}x{Height} must be at least 16x16");
        if (TrainFraction < 0 || TrainFraction > 1) throw new ArgumentException($"synthetic_birds: train fraction {TrainFraction} must be in [0, 1]");
        if (JpegQuality < 1 || JpegQuality > 100) throw new ArgumentException($"synthetic_birds: JPEG quality {JpegQuality} must be in 1..100");
    }

    /// <summary>A folder name unique to these options (used by the cache).</summary>
    public string CacheKey => FormattableString.Invariant(
        $"synthbirds-v1-c{Classes}-n{ImagesPerClass}-{Width}x{Height}-t{TrainFraction:0.###}-s{Seed}-q{JpegQuality}");
}
