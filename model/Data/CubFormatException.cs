using MtlMoe.Model.IO;

namespace MtlMoe.Model.Data;

/// <summary>
/// A problem in a CUB-layout data set or one of its images. The message always starts with the file
/// (and line, when one applies), e.g. <c>bounding_boxes.txt:17: box of image 17 has no area (w=0, h=12)</c>
/// or <c>/data/CUB_200_2011/images/001.X/a.jpg: truncated or corrupt image (...)</c>.
/// </summary>
public sealed class CubFormatException : FileProblemException
{
    /// <summary>The image id concerned, or 0 (a problem of the set as a whole, which --skip-bad cannot skip).</summary>
    public int ImageId { get; }

    /// <summary>Builds "file:line: what" (or "file: what" when <paramref name="line"/> is 0).</summary>
    public CubFormatException(string file, int line, string what, int imageId = 0, Exception? inner = null)
        : base(file, line, what, inner)
    {
        ImageId = imageId;
    }

    /// <summary>The same problem with a metadata file name (images.txt) made a path under <paramref name="root"/>.</summary>
    public CubFormatException UnderRoot(string root)
        => Path.IsPathRooted(File) ? this : new CubFormatException(Path.Combine(root, File), Line, What, ImageId, this);
}
