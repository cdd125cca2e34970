namespace MtlMoe.Model.Data;

/// <summary>
/// One validated image of a CUB-layout data set.
/// </summary>
/// <param name="ImageId">The 1-based id from images.txt.</param>
/// <param name="RelativePath">Path under images/ as written in images.txt.</param>
/// <param name="ClassIndex">0-based class (CUB class id − 1); the label the model is trained on.</param>
/// <param name="IsTrain">True for the train split (train_test_split.txt flag 1).</param>
/// <param name="Box">The bird's box in pixels of the original image, clipped to it (see <see cref="BoxF"/>).</param>
/// <param name="Width">Original image width.</param>
/// <param name="Height">Original image height.</param>
public sealed record CubSample(int ImageId, string RelativePath, int ClassIndex, bool IsTrain, BoxF Box, int Width, int Height)
{
    /// <summary>Absolute path of the image file, or null for an in-memory sample.</summary>
    public string? FullPath { get; init; }

    /// <summary>The decoded image for in-memory samples (synthetic sets streamed without files); null for files.</summary>
    public RgbImage? Image { get; init; }

    /// <summary>A name for messages: the path, or "memory:&lt;id&gt;".</summary>
    public string DisplayName => FullPath ?? $"memory:{ImageId}";
}
