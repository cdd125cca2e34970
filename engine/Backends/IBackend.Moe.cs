namespace MtlMoe.Engine.Backends;

/// <summary>
/// Sparsely-gated mixture-of-experts primitives (Shazeer et al. 2017, tensor2tensor's NoisyTopKGating):
/// fused noisy top-k gating with its hand-written backward, and routing (histogram → exclusive scan →
/// stable placement), dispatch and combine with their backward. No floating-point atomics: every sum
/// has a fixed order, so results are bit-identical from run to run. Float inputs are Float32 or Float64;
/// index buffers are Int32.
/// </summary>
public partial interface IBackend
{
    /// <summary>
    /// Fused noisy top-k gating over logits. clean: [B, E]; rawNoise: [B, E] = x·W_noise (pre-softplus) and
    /// noise: [B, E] = ε ~ N(0, 1), both null for noiseless gating (eval, or noisy gating off).
    /// σ = softplus(rawNoise) + <paramref name="noiseFloor"/>, noisy = clean + ε·σ. Keeps the top
    /// min(k+1, E) noisy logits per row (ties → lower expert index). Returns <c>Packed</c>: [B + 2, E] in the
    /// logits' dtype, rows 0..B-1 the gates (softmax over the top k, zero elsewhere), row B the importance
    /// (Σ_batch gates), row B+1 the load (Σ_batch Φ((clean − threshold)/σ) with noise and k &lt; E, else the
    /// routed count); sums go over fixed blocks of <see cref="MoeKernelConstants.GatingRowsPerBlock"/> rows, then over blocks
    /// in a fixed order (the CPU in block order; CUDA strided per thread, then a tree): deterministic, no atomics. <c>TopIndices</c>: Int32 [B, k], the chosen experts by decreasing noisy logit.
    /// </summary>
    (Storage Packed, Storage TopIndices) MoeGating(StorageView clean, StorageView? rawNoise,
        StorageView? noise, int k, double noiseFloor);

    /// <summary>
    /// Backward of <see cref="MoeGating"/> (same inputs; the top-k is recomputed identically).
    /// gradPacked: [B + 2, E], the upstream gradient of the packed output. Returns the gradient
    /// of clean [B, E] and, when noise is present, of rawNoise [B, E] (through softplus), flowing through the
    /// top-k softmax and through the load's Φ (including its thresholds).
    /// </summary>
    (Storage GradClean, Storage? GradRawNoise) MoeGatingBackward(StorageView clean, StorageView? rawNoise,
        StorageView? noise, StorageView gradPacked, int k, double noiseFloor);

    /// <summary>
    /// Routing plan from topIndices: Int32 [B, k] over <paramref name="numExperts"/> experts. Per-expert
    /// counts, exclusive scan, stable placement (batch order, then slot order, inside each expert).
    /// <paramref name="capacity"/> &lt; 0 is dropless; otherwise each expert keeps its first
    /// <paramref name="capacity"/> rows and the rest are dropped. Returns Offsets Int32 [E + 1] (kept rows per
    /// expert as a scan), SlotOf Int32 [B, k] (buffer row or −1 when dropped), SourceRow Int32 [N] (the batch
    /// row of each buffer row), and the requested (pre-drop) counts and dropped count on the host.
    /// </summary>
    MoeRoutePlan MoeRoute(Storage topIndices, int batch, int k, int numExperts, int capacity);

    /// <summary>Dispatch: buffer[r] = x[sourceRow[r]]; x: [B, D], sourceRow: Int32 [N] → [N, D].</summary>
    Storage MoeDispatch(StorageView x, Storage sourceRow, int rows);

    /// <summary>Backward of dispatch (a gather back, no scatter): dx[b] = Σ_j gradBuffer[slotOf[b, j]] over j in order, skipping −1. gradBuffer: [N, D], slotOf: [B, k] → [B, D].</summary>
    Storage MoeDispatchBackward(StorageView gradBuffer, Storage slotOf, int batch, int k);

    /// <summary>
    /// Combine: out[b] = Σ_{j=0..k-1} gates[b, topIndices[b, j]] · y[slotOf[b, j]] in j order (dropped slots
    /// skipped). y: [N, H], gates: [B, E], topIndices/slotOf: Int32 [B, k] → [B, H].
    /// </summary>
    Storage MoeCombine(StorageView y, StorageView gates, Storage topIndices, Storage slotOf, int k);

    /// <summary>
    /// Backward of combine. gradOut: [B, H]. Returns gradY [N, H] (gate · gradOut row) and gradGates [B, E]
    /// (dot(y row, gradOut row) at the chosen experts, zero elsewhere).
    /// </summary>
    (Storage GradY, Storage GradGates) MoeCombineBackward(StorageView gradOut, StorageView y,
        StorageView gates, Storage topIndices, Storage slotOf, int k);
}

/// <summary>The result of <see cref="IBackend.MoeRoute"/>.</summary>
/// <param name="Offsets">Int32 [E + 1]: exclusive scan of kept rows per expert; Offsets[E] = N.</param>
/// <param name="SlotOf">Int32 [B, k]: buffer row of each (row, choice), −1 when dropped.</param>
/// <param name="SourceRow">Int32 [N]: batch row of each buffer row.</param>
/// <param name="Requested">Rows routed to each expert before capacity drops (host copy).</param>
/// <param name="Kept">Rows kept by each expert (host copy).</param>
/// <param name="Dropped">Number of (row, choice) pairs dropped by the capacity limit.</param>
public sealed record MoeRoutePlan(Storage Offsets, Storage SlotOf, Storage SourceRow, int[] Requested, int[] Kept, int Dropped);

/// <summary>Constants shared by every backend's MoE kernels (the fixed reduction order depends on them).</summary>
public static class MoeKernelConstants
{
    /// <summary>Rows per partial sum of importance and load; partials are then added block by block in order.</summary>
    public const int GatingRowsPerBlock = 8;
}

/// <summary>The fused gating pass: gating, importance, load and the auxiliary loss in one primitive, and its backward.</summary>
public partial interface IBackend
{
    /// <summary>
    /// <see cref="MoeGating"/> and the auxiliary loss aux = w_imp·CV²(importance) + w_load·CV²(load) in one pass. Returns
    /// <c>Packed</c>: [(B + 2)·E + 3] in the logits' dtype — the [B + 2, E] block of <see cref="MoeGating"/> (gates,
    /// importance, load), then aux, CV²(importance) and CV²(load) — and <c>TopIndices</c> as <see cref="MoeGating"/>.
    /// The default runs <see cref="MoeGating"/> and <see cref="MoeAuxLoss"/> on the host (exactly the composed ops' arithmetic).
    /// </summary>
    (Storage Packed, Storage TopIndices) MoeGatingFused(StorageView clean, StorageView? rawNoise, StorageView? noise,
        int k, double noiseFloor, double importanceWeight, double loadWeight)
        => MoeGatingComposed.Forward(this, clean, rawNoise, noise, k, noiseFloor, importanceWeight, loadWeight);

    /// <summary>
    /// Backward of <see cref="MoeGatingFused"/>. packed: its output [(B + 2)·E + 3]; gradPacked: the upstream gradient of
    /// all of it (gates, importance, load, aux; the CV² entries carry no gradient). The aux gradient is folded into the
    /// importance and load gradients, then it continues as <see cref="MoeGatingBackward"/>. The default does that fold on
    /// the host (<see cref="MoeAuxLoss.Backward"/>) and calls <see cref="MoeGatingBackward"/>.
    /// </summary>
    (Storage GradClean, Storage? GradRawNoise) MoeGatingFusedBackward(StorageView clean, StorageView? rawNoise, StorageView? noise,
        StorageView packed, StorageView gradPacked, int k, double noiseFloor, double importanceWeight, double loadWeight)
        => MoeGatingComposed.Backward(this, clean, rawNoise, noise, packed, gradPacked, k, noiseFloor, importanceWeight, loadWeight);
}
