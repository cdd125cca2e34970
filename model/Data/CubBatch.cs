using MtlMoe.Engine;

namespace MtlMoe.Model.Data;

/// <summary>
/// One batch as engine tensors (CPU, owned by the batch: dispose it, or move the tensors elsewhere first).
/// </summary>
public sealed class CubBatch : IDisposable
{
    /// <summary>Images [B, 3, H, W] float32, normalised with <see cref="ImageNetNorm"/>.</summary>
    public Tensor Images { get; }

    /// <summary>Class indices [B] int64, 0-based (CUB class id − 1).</summary>
    public Tensor Labels { get; }

    /// <summary>Boxes [B, 4] float32: (x0, y0, x1, y1) normalised to [0, 1] by the output image size, origin top-left.</summary>
    public Tensor Boxes { get; }

    /// <summary>CUB image ids of the rows, in order.</summary>
    public int[] ImageIds { get; }

    /// <summary>Position of this batch in its epoch (0-based).</summary>
    public int Index { get; }

    /// <summary>Rows in the batch.</summary>
    public int Count => ImageIds.Length;

    internal CubBatch(Tensor images, Tensor labels, Tensor boxes, int[] imageIds, int index)
    {
        Images = images; Labels = labels; Boxes = boxes; ImageIds = imageIds; Index = index;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Images.Dispose(); Labels.Dispose(); Boxes.Dispose();
    }
}
