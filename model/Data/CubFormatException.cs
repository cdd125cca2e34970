namespace MtlMoe.Model.Data;

/// <summary>
/// A problem in a CUB-layout data set or one of its images. The message always starts with the file
/// (and line, when one applies), e.g. <c>bounding_boxes.txt:17: box of image 17 has no area (w=0, h=12)</c>
/// or <c>/data/CUB_200_2011/images/001.X/a.jpg: truncated or corrupt image (...)</c>.
/// </summary>
public sealed class CubFormatException : Exception
{
    /// <summary>The file at fault (as written in the message: a CUB metadata file name or an image path).</summary>
    public string File { get; }

    /// <summary>1-based line in <see cref="File"/>, or 0 when the problem is not tied to a line.</summary>
    public int Line { get; }

    /// <summary>The image id concerned, or 0.</summary>
    public int ImageId { get; }

    /// <summary>Builds "file:line: what" (or "file: what" when <paramref name="line"/> is 0).</summary>
    public CubFormatException(string file, int line, string what, int imageId = 0, Exception? inner = null)
        : base(line > 0 ? $"{file}:{line}: {what}" : $"{file}: {what}", inner)
    {
        File = file; Line = line; ImageId = imageId;
    }
}
