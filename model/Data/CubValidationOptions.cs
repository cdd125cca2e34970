namespace MtlMoe.Model.Data;

/// <summary>How <see cref="CubDataset.Load"/> parses and checks a CUB-layout folder (what to do with bad images, how deep to check them).</summary>
public sealed record CubValidationOptions
{
    /// <summary>
    /// The --skip-bad behaviour: drop images with a problem (bad line, unknown class, missing or unreadable
    /// file, box with no area) and count them in <see cref="CubDataset.SkippedCount"/> instead of throwing.
    /// Problems with the set as a whole (a missing metadata file, a bad classes.txt) still throw.
    /// </summary>
    public bool SkipBad { get; init; }

    /// <summary>Read every image header (size, format, pixel limit) during validation (default true).</summary>
    public bool CheckImageHeaders { get; init; } = true;

    /// <summary>
    /// Also fully decode every image during validation (in parallel), so a truncated or corrupt file is found before
    /// training starts — and dropped under <see cref="SkipBad"/> — instead of stopping an epoch. About 2 ms per
    /// CUB image per core.
    /// </summary>
    public bool DecodeAll { get; init; }

    /// <summary>Stops the image check (Ctrl-C): <see cref="OperationCanceledException"/>.</summary>
    public CancellationToken Cancel { get; init; }

    /// <summary>Called now and then from the checking threads with (images checked, images to check).</summary>
    public Action<int, int>? Progress { get; init; }

    /// <summary>Boxes may overhang the image by this many pixels and are clipped; more is an error (default 2).</summary>
    public float BoxOverhangTolerance { get; init; } = 2f;

    /// <summary>Decoding limits (defaults when null).</summary>
    public DecodeLimits? Limits { get; init; }
}
