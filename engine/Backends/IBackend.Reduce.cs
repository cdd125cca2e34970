namespace MtlMoe.Engine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// Reduces over <paramref name="dims"/> (sorted, distinct); the result has the input's rank with
    /// reduced dims of size 1. ArgMax/ArgMin return Int64 and take exactly one dim (first index on ties).
    /// </summary>
    Storage Reduce(ReduceOp op, StorageView x, int[] dims);
}

/// <summary>Reductions.</summary>
public enum ReduceOp { Sum, Max, Min, ArgMax, ArgMin }
