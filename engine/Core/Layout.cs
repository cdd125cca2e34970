namespace MtlMoe.Engine;

/// <summary>
/// Where a tensor's elements sit in its storage: shape, strides (in elements, 0 for broadcast dims)
/// and offset. Views change the layout and share the storage.
/// </summary>
public readonly struct Layout
{
    /// <summary>Size of each dim. Never mutated after construction.</summary>
    public int[] Shape { get; }
    /// <summary>Element step of each dim. Never mutated after construction.</summary>
    public int[] Strides { get; }
    /// <summary>Index of element [0, …, 0] in the storage.</summary>
    public int Offset { get; }

    /// <summary>Creates a layout from its parts.</summary>
    public Layout(int[] shape, int[] strides, int offset)
    {
        if (shape.Length != strides.Length) throw new ArgumentException("shape and strides differ in rank");
        Shape = shape; Strides = strides; Offset = offset;
    }

    /// <summary>A row-major contiguous layout at offset 0.</summary>
    public static Layout Contiguous(int[] shape) => new((int[])shape.Clone(), Shapes.ContiguousStrides(shape), 0);

    /// <summary>Number of dims.</summary>
    public int Rank => Shape.Length;

    /// <summary>Number of elements.</summary>
    public int Count => Shapes.Count(Shape);

    /// <summary>True when elements are row-major and dense (offset may be non-zero).</summary>
    public bool IsContiguous
    {
        get
        {
            int acc = 1;
            for (int i = Shape.Length - 1; i >= 0; i--)
            {
                if (Shape[i] != 1 && Strides[i] != acc) return false;
                acc *= Shape[i];
            }
            return true;
        }
    }

    /// <summary>
    /// This layout broadcast to <paramref name="shape"/> (NumPy rules): new leading dims and size-1 dims
    /// get stride 0. Throws naming <paramref name="op"/> when the shapes are incompatible.
    /// </summary>
    public Layout BroadcastTo(int[] shape, string op = "expand")
    {
        if (Shapes.Equal(shape, Shape)) return this;
        if (shape.Length < Rank) throw new ShapeException($"{op}: cannot broadcast {Shapes.Format(Shape)} to {Shapes.Format(shape)}");
        int lead = shape.Length - Rank;
        var strides = new int[shape.Length];
        for (int i = lead; i < shape.Length; i++)
        {
            int s = Shape[i - lead];
            if (s == shape[i]) strides[i] = Strides[i - lead];
            else if (s == 1) strides[i] = 0;
            else throw new ShapeException($"{op}: cannot broadcast {Shapes.Format(Shape)} to {Shapes.Format(shape)} (dim {i}: {s} vs {shape[i]})");
        }
        return new Layout((int[])shape.Clone(), strides, Offset);
    }

    /// <summary>Storage index of a multi-index.</summary>
    public int IndexOf(ReadOnlySpan<int> index)
    {
        int o = Offset;
        for (int i = 0; i < index.Length; i++) o += index[i] * Strides[i];
        return o;
    }

    /// <summary>"shape [2, 3] strides [3, 1] offset 0".</summary>
    public override string ToString() => $"shape {Shapes.Format(Shape)} strides {Shapes.Format(Strides)} offset {Offset}";
}
