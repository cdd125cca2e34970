namespace MtlMoe.Engine.MoE;

/// <summary>The output of a mixture-of-experts forward pass.</summary>
/// <param name="Output">[B, H]: Σ_j gate · expert output.</param>
/// <param name="AuxLoss">Scalar: w_imp·CV²(importance) + w_load·CV²(load); add it to the training loss.</param>
/// <param name="Metrics">Host-side routing statistics.</param>
public sealed record MoeForwardResult(Tensor Output, Tensor AuxLoss, MoeMetrics Metrics);

/// <summary>
/// The MoE layer as a function of explicit tensors (what <see cref="MoeLayer"/> runs, and what gradient
/// checks call with their own leaves).
/// </summary>
public static class MoeFunctional
{
    /// <summary>
    /// Gating of x: [B, D] with wGate, wNoise: [D, E]. In training with wNoise given, ε: [B, E] is drawn
    /// from <paramref name="noiseRng"/> (row-major); otherwise no noise and no σ.
    /// </summary>
    public static GatingResult Gate(Tensor x, Tensor wGate, Tensor? wNoise, int k, double noiseFloor, bool training, Rng noiseRng)
        => Gate(x, wGate, wNoise, k, noiseFloor, training, noiseRng, aux: null);

    /// <summary>
    /// <see cref="Gate(Tensor, Tensor, Tensor?, int, double, bool, Rng)"/> with the auxiliary loss in the same fused op
    /// (<see cref="MoeOps.NoisyTopKGatingWithAux"/>): <see cref="GatingResult.Aux"/> = w_imp·CV²(importance) + w_load·CV²(load).
    /// </summary>
    public static GatingResult GateWithAux(Tensor x, Tensor wGate, Tensor? wNoise, int k, double noiseFloor, bool training, Rng noiseRng,
        double importanceWeight, double loadWeight)
        => Gate(x, wGate, wNoise, k, noiseFloor, training, noiseRng, aux: (importanceWeight, loadWeight));

    private static GatingResult Gate(Tensor x, Tensor wGate, Tensor? wNoise, int k, double noiseFloor, bool training, Rng noiseRng,
        (double Importance, double Load)? aux)
    {
        if (x.Rank != 2) throw new ShapeException($"moe: input must be [B, D], got {Shapes.Format(x.Shape)}");
        if (wGate.Rank != 2 || wGate.Shape[0] != x.Shape[1])
            throw new ShapeException($"moe: input {Shapes.Format(x.Shape)} does not match gate weight {Shapes.Format(wGate.Shape)} (expected [{x.Shape[1]}, E])");
        if (wNoise is not null && !Shapes.Equal(wNoise.Shape, wGate.Shape))
            throw new ShapeException($"moe: noise weight {Shapes.Format(wNoise.Shape)} does not match gate weight {Shapes.Format(wGate.Shape)}");
        // Under autocast the gate's logits, noise and aux loss stay float32 (policy "moe_gate_logits"): a bf16 x is
        // widened once, and the matmuls run with autocast suspended so that they are not narrowed again.
        using var ac = Amp.AutocastArgs.For("moe_gate_logits", x, wGate, wNoise);
        if (ac.Changed) { x = ac.At(0); wGate = ac.At(1); wNoise = ac[2]; }
        using var float32 = Amp.Autocast.Suspend();
        using var clean = Ops.MatMul(x, wGate);   // clean: [B, E]
        if (!training || wNoise is null) return Gating(clean, null, null);
        using var raw = Ops.MatMul(x, wNoise);    // raw: [B, E]
        using var eps = Tensor.RandN(clean.Shape, noiseRng, clean.DType, clean.Device);
        return Gating(clean, raw, eps);

        GatingResult Gating(Tensor c, Tensor? r, Tensor? n) => aux is var (wi, wl)
            ? MoeOps.NoisyTopKGatingWithAux(c, r, n, k, noiseFloor, wi, wl)
            : MoeOps.NoisyTopKGating(c, r, n, k, noiseFloor);
    }

    /// <summary>
    /// Full forward: gating, aux loss, routing, dispatch, one call per expert on its contiguous rows, combine.
    /// x: [B, D]; experts: E functions [n, D] → [n, H].
    /// </summary>
    public static MoeForwardResult Forward(Tensor x, Tensor wGate, Tensor? wNoise, IReadOnlyList<Func<Tensor, Tensor>> experts,
        MoeOptions options, bool training, Rng noiseRng)
    {
        options.Validate();
        if (experts.Count != options.NumExperts) throw new ArgumentException($"moe: {experts.Count} experts for numExperts = {options.NumExperts}");
        if (wGate.Rank == 2 && wGate.Shape[1] != options.NumExperts)
            throw new ShapeException($"moe: gate weight {Shapes.Format(wGate.Shape)} has {wGate.Shape[1]} experts, options say {options.NumExperts}");
        // One fused op: gating, importance, load and the aux loss, with one backward.
        using var gating = GateWithAux(x, wGate, options.NoisyGating ? wNoise : null, options.K, options.NoiseFloor, training, noiseRng,
            options.ImportanceWeight, options.LoadWeight);
        var aux = gating.Aux!;
        int b = x.Shape[0];
        using var routing = MoeOps.Route(gating.TopIndices, options.NumExperts, options.Capacity(b));
        using var buffer = MoeOps.Dispatch(x, routing);   // buffer: [N, D]
        var outputs = new Tensor?[options.NumExperts];
        try
        {
            for (int e = 0; e < options.NumExperts; e++)
            {
                if (routing.Kept[e] == 0) continue;
                using var slice = buffer.Narrow(0, routing.Starts[e], routing.Kept[e]);   // slice: [n_e, D]
                outputs[e] = experts[e](slice);
            }
            var output = MoeOps.Combine(outputs, gating.Gates, gating.TopIndices, routing);
            return new MoeForwardResult(output, aux, Metrics(gating, routing, aux));
        }
        finally { foreach (var o in outputs) o?.Dispose(); }
    }

    private static MoeMetrics Metrics(GatingResult g, MoeRouting r, Tensor aux)
    {
        int b = r.Batch, k = r.K, e = r.NumExperts;
        var top = g.TopIndices.ToArray<int>();
        var gates = g.Gates.ToDoubleArray();
        var chosen = new double[b * k];
        for (int i = 0; i < b * k; i++) chosen[i] = gates[(i / k) * e + top[i]];
        double ideal = (double)b * k / e;
        int dead = 0;
        var load = new double[e];
        for (int i = 0; i < e; i++) { load[i] = ideal > 0 ? r.Requested[i] / ideal : 0; if (r.Requested[i] == 0) dead++; }
        return new MoeMetrics
        {
            Batch = b, K = k, Load = load, RoutedRows = (int[])r.Requested.Clone(),
            Importance = g.Importance.ToDoubleArray(), LoadEstimate = g.Load.ToDoubleArray(),
            DeadExperts = dead, DroppedRows = r.Dropped, ExpertIndices = top, Gates = chosen, AuxLoss = aux.ToDoubleArray()[0],
        };
    }
}
