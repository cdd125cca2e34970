namespace MtlMoe.Engine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// Batched matrix product: a is [..., m, k], b is [..., k, n] with identical batch dims (stride 0
    /// where broadcast); returns a contiguous [..., m, n]. Either of the last two strides may be 1
    /// (transposed operands are read in place).
    /// </summary>
    Storage MatMul(StorageView a, StorageView b);
}
