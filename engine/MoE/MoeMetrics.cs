namespace MtlMoe.Engine.MoE;

/// <summary>What a trainer shows about one MoE forward pass (plain host arrays).</summary>
public sealed class MoeMetrics
{
    /// <summary>Batch size B.</summary>
    public int Batch { get; init; }
    /// <summary>Experts per row k.</summary>
    public int K { get; init; }
    /// <summary>Rows routed to each expert divided by the ideal B·k/E (1 = perfectly balanced), before drops.</summary>
    public double[] Load { get; init; } = [];
    /// <summary>Rows routed to each expert (before capacity drops).</summary>
    public int[] RoutedRows { get; init; } = [];
    /// <summary>Σ over the batch of each expert's gate.</summary>
    public double[] Importance { get; init; } = [];
    /// <summary>The smooth load estimate the aux loss uses (Σ Φ with noise, else counts).</summary>
    public double[] LoadEstimate { get; init; } = [];
    /// <summary>Experts that received no row.</summary>
    public int DeadExperts { get; init; }
    /// <summary>(row, choice) pairs dropped by the capacity limit.</summary>
    public int DroppedRows { get; init; }
    /// <summary>[B · k] row-major: the experts of row b are ExpertIndices[b·k .. b·k + k), by decreasing logit.</summary>
    public int[] ExpertIndices { get; init; } = [];
    /// <summary>[B · k]: the gate of each chosen expert, aligned with <see cref="ExpertIndices"/>.</summary>
    public double[] Gates { get; init; } = [];
    /// <summary>The auxiliary loss value.</summary>
    public double AuxLoss { get; init; }
}
