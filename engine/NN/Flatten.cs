namespace MtlMoe.Engine.NN;

/// <summary>Flattens dims [startDim, endDim] into one: [N, C, H, W] → [N, C·H·W] with the defaults.</summary>
public sealed class Flatten : Module
{
    /// <summary>Flattens dims <paramref name="startDim"/> through <paramref name="endDim"/> (negative counts from the end).</summary>
    public Flatten(int startDim = 1, int endDim = -1) { StartDim = startDim; EndDim = endDim; }

    /// <summary>First flattened dim.</summary>
    public int StartDim { get; }
    /// <summary>Last flattened dim.</summary>
    public int EndDim { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor x)
    {
        int s = Shapes.NormalizeDim(StartDim, x.Rank, "flatten"), e = Shapes.NormalizeDim(EndDim, x.Rank, "flatten");
        if (s > e) throw new ShapeException($"flatten: start dim {StartDim} comes after end dim {EndDim} for input {Shapes.Format(x.Shape)}");
        return x.Flatten(s, e);
    }
}
