namespace MtlMoe.Engine.MoE;

/// <summary>
/// Outputs of <see cref="MoeOps.NoisyTopKGating"/> and <see cref="MoeOps.NoisyTopKGatingWithAux"/>: gates, importance, load
/// (and the aux loss) are views of one recorded tensor, so gradients from all of them reach the logits through one backward.
/// </summary>
public sealed class GatingResult : IDisposable
{
    internal GatingResult(Tensor packed, Tensor gates, Tensor importance, Tensor load, Tensor topIndices, int k, Tensor? aux = null, Tensor? flat = null)
    {
        Packed = packed; Gates = gates; Importance = importance; Load = load; TopIndices = topIndices; K = k; Aux = aux; Flat = flat;
    }

    /// <summary>Scalar: w_imp·CV²(importance) + w_load·CV²(load) from the fused pass (null from <see cref="MoeOps.NoisyTopKGating"/>). Not disposed with the result: the caller owns it.</summary>
    public Tensor? Aux { get; }

    /// <summary>The fused op's whole output [(B + 2)·E + 3] (null from the unfused op).</summary>
    internal Tensor? Flat { get; }

    /// <summary>[B + 2, E]: the gates, then importance, then load.</summary>
    internal Tensor Packed { get; }

    /// <summary>[B, E]: softmax over each row's top k noisy logits, zero elsewhere.</summary>
    public Tensor Gates { get; }

    /// <summary>[E]: Σ over the batch of the gates.</summary>
    public Tensor Importance { get; }

    /// <summary>[E]: Σ over the batch of Φ((clean − threshold)/σ) (noisy, k &lt; E), else the routed count.</summary>
    public Tensor Load { get; }

    /// <summary>Int32 [B, k]: chosen experts per row, by decreasing noisy logit (ties → lower index).</summary>
    public Tensor TopIndices { get; }

    /// <summary>Experts per row.</summary>
    public int K { get; }

    /// <summary>Disposes every tensor of the result.</summary>
    public void Dispose() { Gates.Dispose(); Importance.Dispose(); Load.Dispose(); TopIndices.Dispose(); Packed.Dispose(); Flat?.Dispose(); }
}
