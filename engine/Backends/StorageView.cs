namespace MtlMoe.Engine.Backends;

/// <summary>
/// A storage seen through a layout (shape, strides, offset): how every <see cref="IBackend"/> primitive receives a
/// tensor operand — a tensor's <see cref="Tensor.StorageView"/>, or a storage a primitive returned, seen densely
/// (<see cref="Dense"/>). Primitives return new contiguous storages.
/// </summary>
/// <param name="Storage">The elements.</param>
/// <param name="Layout">Which of them, in which order.</param>
public readonly record struct StorageView(Storage Storage, Layout Layout)
{
    /// <summary>Element type.</summary>
    public DType DType => Storage.DType;

    /// <summary>The layout's shape.</summary>
    public int[] Shape => Layout.Shape;

    /// <summary>This view broadcast to <paramref name="shape"/> (<see cref="Layout.BroadcastTo"/>; stride 0 on broadcast dims).</summary>
    public StorageView BroadcastTo(int[] shape, string op = "expand") => new(Storage, Layout.BroadcastTo(shape, op));

    /// <summary>A dense row-major view of <paramref name="storage"/> as <paramref name="shape"/>.</summary>
    public static StorageView Dense(Storage storage, int[] shape) => new(storage, Layout.Contiguous(shape));

    /// <summary>An optional operand as (storage or null, layout or default): for backends that take it apart.</summary>
    public static (Storage? Storage, Layout Layout) Split(StorageView? view) => view is { } v ? (v.Storage, v.Layout) : (null, default);

    /// <summary>As <see cref="Split"/>, with the layout null when the operand is absent.</summary>
    public static (Storage? Storage, Layout? Layout) SplitNullable(StorageView? view) => view is { } v ? (v.Storage, v.Layout) : (null, null);

    /// <summary>"shape [2, 3] strides [3, 1] offset 0 on cpu".</summary>
    public override string ToString() => $"{Layout} on {Storage.Device}";
}
