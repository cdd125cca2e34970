namespace MtlMoe.Engine.MoE;

/// <summary>Options of a sparsely-gated mixture-of-experts layer.</summary>
public sealed class MoeOptions
{
    /// <summary>Number of experts E (≥ 1).</summary>
    public int NumExperts { get; init; } = 4;

    /// <summary>Experts per row k (1 ≤ k ≤ E).</summary>
    public int K { get; init; } = 2;

    /// <summary>Noisy gating while training (σ = softplus(x·W_noise) + <see cref="NoiseFloor"/>); eval never adds noise.</summary>
    public bool NoisyGating { get; init; } = true;

    /// <summary>Added to softplus(x·W_noise) so that σ never reaches zero (tensor2tensor's 1e-2).</summary>
    public double NoiseFloor { get; init; } = 1e-2;

    /// <summary>
    /// Null for dropless routing; otherwise each expert keeps at most ⌈factor · B · k / E⌉ rows (batch order)
    /// and the overflow is dropped (its contribution to the output is zero) and counted.
    /// </summary>
    public double? CapacityFactor { get; init; }

    /// <summary>Weight of CV²(importance) in the auxiliary loss.</summary>
    public double ImportanceWeight { get; init; } = 0.01;

    /// <summary>Weight of CV²(load) in the auxiliary loss.</summary>
    public double LoadWeight { get; init; } = 0.01;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad option.</summary>
    public void Validate()
    {
        if (NumExperts < 1) throw new ArgumentException($"moe: numExperts must be at least 1, got {NumExperts}");
        if (K < 1 || K > NumExperts) throw new ArgumentException($"moe: k must be in [1, numExperts = {NumExperts}], got {K}");
        if (CapacityFactor is double c && !(c > 0)) throw new ArgumentException($"moe: capacity factor must be positive, got {c}");
        if (!(NoiseFloor >= 0)) throw new ArgumentException($"moe: noise floor must be non-negative, got {NoiseFloor}");
        if (!(ImportanceWeight >= 0) || !(LoadWeight >= 0)) throw new ArgumentException($"moe: loss weights must be non-negative, got {ImportanceWeight} and {LoadWeight}");
    }

    /// <summary>Rows each expert may keep for a batch of <paramref name="batch"/>, or −1 when dropless.</summary>
    public int Capacity(int batch) => CapacityFactor is double c ? (int)Math.Ceiling(c * batch * K / NumExperts) : -1;
}
