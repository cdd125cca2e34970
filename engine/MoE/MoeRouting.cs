namespace MtlMoe.Engine.MoE;

/// <summary>
/// A routing plan (<see cref="MoeOps.Route"/>): where each (row, choice) sits in the expert-contiguous
/// buffer. Index tensors are Int32 on the logits' device; counts are host copies.
/// </summary>
public sealed class MoeRouting : IDisposable
{
    internal MoeRouting(Tensor offsets, Tensor slotOf, Tensor sourceRow, int[] requested, int[] kept, int dropped, int batch, int k, int capacity)
    {
        Offsets = offsets; SlotOf = slotOf; SourceRow = sourceRow; Requested = requested; Kept = kept;
        Dropped = dropped; Batch = batch; K = k; Capacity = capacity;
        Starts = new int[kept.Length];
        for (int e = 1; e < kept.Length; e++) Starts[e] = Starts[e - 1] + kept[e - 1];
    }

    /// <summary>Int32 [E + 1]: exclusive scan of kept rows.</summary>
    public Tensor Offsets { get; }
    /// <summary>Int32 [B, k]: buffer row of each (row, choice), −1 when dropped.</summary>
    public Tensor SlotOf { get; }
    /// <summary>Int32 [N]: batch row of each buffer row.</summary>
    public Tensor SourceRow { get; }
    /// <summary>Rows routed to each expert before capacity drops.</summary>
    public int[] Requested { get; }
    /// <summary>Rows each expert processes.</summary>
    public int[] Kept { get; }
    /// <summary>First buffer row of each expert (host copy of Offsets[0..E)).</summary>
    public int[] Starts { get; }
    /// <summary>(row, choice) pairs dropped by the capacity limit.</summary>
    public int Dropped { get; }
    /// <summary>Batch size B.</summary>
    public int Batch { get; }
    /// <summary>Experts per row.</summary>
    public int K { get; }
    /// <summary>Per-expert capacity, −1 when dropless.</summary>
    public int Capacity { get; }
    /// <summary>Number of experts.</summary>
    public int NumExperts => Kept.Length;
    /// <summary>Buffer rows N = Σ kept.</summary>
    public int Rows => Starts.Length == 0 ? 0 : Starts[^1] + Kept[^1];

    /// <summary>Disposes the index tensors.</summary>
    public void Dispose() { Offsets.Dispose(); SlotOf.Dispose(); SourceRow.Dispose(); }
}
