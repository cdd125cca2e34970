namespace MtlMoe.Engine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// Softmax (or log-softmax when <paramref name="log"/>) along <paramref name="dim"/> (already
    /// normalized to [0, rank)), computed stably by subtracting each row's maximum first.
    /// Returns a contiguous storage in the input's shape.
    /// </summary>
    Storage Softmax(StorageView x, int dim, bool log);
}
