namespace MtlMoe.Engine.Backends;

/// <summary>
/// Index primitives. <c>dim</c> is already normalized to [0, rank); index storages are Int64 or Int32
/// and their values have been range-checked by the op (backends still refuse an out-of-range index).
/// </summary>
public partial interface IBackend
{
    /// <summary>
    /// The <paramref name="k"/> largest (or smallest) elements along <paramref name="dim"/>, sorted
    /// (largest first when <paramref name="largest"/>, else smallest first); equal values keep the
    /// lower index first; NaN counts as the largest value. Both results are contiguous with the
    /// input's shape except size k at <paramref name="dim"/>; indices are Int64.
    /// </summary>
    (Storage Values, Storage Indices) TopK(StorageView x, int dim, int k, bool largest);

    /// <summary>
    /// out[i] = x[i with coordinate <paramref name="dim"/> replaced by index[i]]; the result has the
    /// index's shape (which is no larger than x's in any dim but <paramref name="dim"/>) and x's dtype.
    /// </summary>
    Storage Gather(StorageView x, int dim, StorageView index);

    /// <summary>
    /// A copy of x (x's shape, contiguous) with src[i] added at x[i with coordinate <paramref name="dim"/>
    /// replaced by index[i]] for every position i of the index (src is at least the index's size in every dim).
    /// Deterministic: each output element receives its contributions in increasing order along <paramref name="dim"/>.
    /// </summary>
    Storage ScatterAdd(StorageView x, int dim, StorageView index, StorageView src);
}
