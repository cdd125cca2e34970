using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine.MoE;

/// <summary>
/// The MoE ops with autograd: fused noisy top-k gating, routing, dispatch into an expert-contiguous
/// buffer and the gate-weighted combine. Each calls its backend primitive (IBackend.Moe) forward and
/// backward; nothing is composed from generic ops except the CV² of the auxiliary loss (on [E] vectors).
/// </summary>
public static class MoeOps
{
    /// <summary>
    /// Noisy top-k gating. clean: [B, E] = x·W_g. rawNoise: [B, E] = x·W_noise and noise: [B, E] = ε ~ N(0, 1),
    /// both null for noiseless gating (eval mode, or noise off): then nothing divides by σ and the load is
    /// the routed count. Gradients flow to clean and rawNoise through the top-k softmax and the load's Φ.
    /// </summary>
    public static GatingResult NoisyTopKGating(Tensor clean, Tensor? rawNoise, Tensor? noise, int k, double noiseFloor = 1e-2)
    {
        CheckGating(clean, rawNoise, noise, k);
        int b = clean.Shape[0], e = clean.Shape[1];
        var be = clean.Backend;
        var (packedS, topS) = be.MoeGating(clean.StorageView, rawNoise?.StorageView, noise?.StorageView, k, noiseFloor);
        var packed = Tensor.FromStorage(packedS, [b + 2, e]);   // packed: [B + 2, E]
        var top = Tensor.FromStorage(topS, [b, k]);              // top: Int32 [B, k]
        Tensor[] inputs = rawNoise is null ? [clean] : [clean, rawNoise];
        Graph.Record(packed, "moe_gating", inputs, g =>
        {
            var (gc, gr) = be.MoeGatingBackward(clean.StorageView, rawNoise?.StorageView, noise?.StorageView, g.StorageView, k, noiseFloor);
            var dClean = Tensor.FromStorage(gc, [b, e]);
            if (rawNoise is null) return [dClean];
            return [dClean, Tensor.FromStorage(gr!, [b, e])];
        }, saved: noise is null ? null : [noise]);
        var gates = packed.Narrow(0, 0, b);
        var importance = packed.Select(0, b);
        var load = packed.Select(0, b + 1);
        return new GatingResult(packed, gates, importance, load, top, k);
    }

    /// <summary>
    /// Noisy top-k gating and the auxiliary loss as ONE recorded op with one backward (the fused gating pass,
    /// <see cref="Backends.IBackend.MoeGatingFused"/>): same gates, importance, load and routing as
    /// <see cref="NoisyTopKGating"/>, plus <see cref="GatingResult.Aux"/> = w_imp·CV²(importance) + w_load·CV²(load) =
    /// <see cref="AuxLoss"/> of it. The aux gradient is folded into the gating backward. On the CPU the values and
    /// gradients are bit-identical to <see cref="NoisyTopKGating"/> followed by <see cref="AuxLoss"/>.
    /// </summary>
    public static GatingResult NoisyTopKGatingWithAux(Tensor clean, Tensor? rawNoise, Tensor? noise, int k, double noiseFloor,
        double importanceWeight, double loadWeight)
    {
        CheckGating(clean, rawNoise, noise, k);
        int b = clean.Shape[0], e = clean.Shape[1], head = (b + 2) * e;
        var be = clean.Backend;
        var (flatS, topS) = be.MoeGatingFused(clean.StorageView, rawNoise?.StorageView, noise?.StorageView, k, noiseFloor, importanceWeight, loadWeight);
        var flat = Tensor.FromStorage(flatS, [head + 3]);   // flat: [(B + 2)·E + 3]: gates, importance, load, aux, CV²(imp), CV²(load)
        var top = Tensor.FromStorage(topS, [b, k]);         // top: Int32 [B, k]
        Tensor[] inputs = rawNoise is null ? [clean] : [clean, rawNoise];
        Graph.Record(flat, "moe_gating_fused", inputs, g =>
        {
            var (gc, gr) = be.MoeGatingFusedBackward(clean.StorageView, rawNoise?.StorageView, noise?.StorageView, flat.StorageView,
                g.StorageView, k, noiseFloor, importanceWeight, loadWeight);
            var dClean = Tensor.FromStorage(gc, [b, e]);
            if (rawNoise is null) return [dClean];
            return [dClean, Tensor.FromStorage(gr!, [b, e])];
        }, saved: noise is null ? null : [noise]);
        using var block = flat.Narrow(0, 0, head);
        var packed = block.Reshape(b + 2, e);               // packed: [B + 2, E]
        var gates = packed.Narrow(0, 0, b);
        var importance = packed.Select(0, b);
        var load = packed.Select(0, b + 1);
        using var auxRun = flat.Narrow(0, head, 1);
        var aux = auxRun.Reshape([]);
        return new GatingResult(packed, gates, importance, load, top, k, aux, flat);
    }

    private static void CheckGating(Tensor clean, Tensor? rawNoise, Tensor? noise, int k)
    {
        if (clean.Rank != 2) throw new ShapeException($"moe_gating: logits must be [B, E], got {Shapes.Format(clean.Shape)}");
        int e = clean.Shape[1];
        if (e == 0) throw new ShapeException($"moe_gating: logits {Shapes.Format(clean.Shape)} have no experts (E = 0)");
        if (k < 1 || k > e) throw new ArgumentException($"moe_gating: k = {k} must be in [1, E = {e}] for logits {Shapes.Format(clean.Shape)}");
        if (!clean.DType.IsFloat()) throw new ArgumentException($"moe_gating: logits must be float, got {clean.DType.Name()}");
        if ((rawNoise is null) != (noise is null)) throw new ArgumentException("moe_gating: rawNoise and noise must be given together (or both null)");
        if (rawNoise is not null && noise is not null)
        {
            if (!Shapes.Equal(rawNoise.Shape, clean.Shape) || !Shapes.Equal(noise.Shape, clean.Shape))
                throw new ShapeException($"moe_gating: clean {Shapes.Format(clean.Shape)}, noise logits {Shapes.Format(rawNoise.Shape)} and noise {Shapes.Format(noise.Shape)} must have the same shape");
            Ops.SameDevice("moe_gating", clean, rawNoise); Ops.SameDType("moe_gating", clean, rawNoise);
            Ops.SameDevice("moe_gating", clean, noise); Ops.SameDType("moe_gating", clean, noise);
        }
    }

    /// <summary>
    /// Routing plan for topIndices: Int32 [B, k] over <paramref name="numExperts"/> experts: counts, exclusive
    /// scan, stable placement; <paramref name="capacity"/> &lt; 0 is dropless, otherwise overflow rows are dropped and counted.
    /// </summary>
    public static MoeRouting Route(Tensor topIndices, int numExperts, int capacity = -1)
    {
        if (topIndices.Rank != 2 || topIndices.DType != DType.Int32)
            throw new ShapeException($"moe_route: expert indices must be Int32 [B, k], got {topIndices.DType.Name()} {Shapes.Format(topIndices.Shape)}");
        if (numExperts < 1) throw new ArgumentException($"moe_route: numExperts must be at least 1, got {numExperts}");
        int b = topIndices.Shape[0], k = topIndices.Shape[1];
        if (k < 1 || k > numExperts) throw new ArgumentException($"moe_route: k = {k} must be in [1, E = {numExperts}]");
        using var dense = topIndices.IsContiguous && topIndices.Layout.Offset == 0 ? topIndices.Detach() : topIndices.Contiguous();
        var plan = topIndices.Backend.MoeRoute(dense.Storage, b, k, numExperts, capacity);
        int rows = 0; foreach (var c in plan.Kept) rows += c;
        return new MoeRouting(Tensor.FromStorage(plan.Offsets, [numExperts + 1]), Tensor.FromStorage(plan.SlotOf, [b, k]),
            Tensor.FromStorage(plan.SourceRow, [rows]), plan.Requested, plan.Kept, plan.Dropped, b, k, capacity);
    }

    /// <summary>Dispatch: x: [B, D] → the expert-contiguous buffer [N, D] (expert e's rows at routing.Starts[e]).</summary>
    public static Tensor Dispatch(Tensor x, MoeRouting routing)
    {
        if (x.Rank != 2 || x.Shape[0] != routing.Batch)
            throw new ShapeException($"moe_dispatch: input {Shapes.Format(x.Shape)} does not match a routing of {routing.Batch} rows (expected [{routing.Batch}, D])");
        int d = x.Shape[1], n = routing.Rows;
        var be = x.Backend;
        var buf = Tensor.FromStorage(be.MoeDispatch(x.StorageView, routing.SourceRow.Storage, n), [n, d]);
        var slot = routing.SlotOf; int b = routing.Batch, k = routing.K;
        Graph.Record(buf, "moe_dispatch", [x], g => [Tensor.FromStorage(be.MoeDispatchBackward(g.StorageView, slot.Storage, b, k), [b, d])], saved: [slot]);
        return buf;
    }

    /// <summary>
    /// Combine: out[b] = Σ_j gates[b, e_j] · y_{e_j}[row of (b, j)], j in order. expertOutputs: one entry per
    /// expert, [Kept[e], H] (null allowed where Kept[e] = 0); gates: [B, E]; topIndices: Int32 [B, k] → [B, H].
    /// </summary>
    public static Tensor Combine(IReadOnlyList<Tensor?> expertOutputs, Tensor gates, Tensor topIndices, MoeRouting routing)
    {
        int e = routing.NumExperts, b = routing.Batch, k = routing.K;
        if (expertOutputs.Count != e) throw new ArgumentException($"moe_combine: {expertOutputs.Count} expert outputs for {e} experts");
        if (gates.Rank != 2 || gates.Shape[0] != b || gates.Shape[1] != e)
            throw new ShapeException($"moe_combine: gates {Shapes.Format(gates.Shape)} do not match the routing (expected [{b}, {e}])");
        if (topIndices.DType != DType.Int32 || topIndices.Rank != 2 || topIndices.Shape[0] != b || topIndices.Shape[1] != k)
            throw new ShapeException($"moe_combine: expert indices {topIndices.DType.Name()} {Shapes.Format(topIndices.Shape)} do not match the routing (expected Int32 [{b}, {k}])");
        int h = -1;
        var present = new List<Tensor>();
        for (int i = 0; i < e; i++)
        {
            var y = expertOutputs[i];
            if (y is null)
            {
                if (routing.Kept[i] != 0) throw new ArgumentException($"moe_combine: expert {i} has {routing.Kept[i]} rows but no output");
                continue;
            }
            if (y.Rank != 2 || y.Shape[0] != routing.Kept[i] || (h >= 0 && y.Shape[1] != h))
                throw new ShapeException($"moe_combine: expert {i} output {Shapes.Format(y.Shape)} does not match its {routing.Kept[i]} rows{(h >= 0 ? $" × {h} features" : "")}");
            Ops.SameDevice("moe_combine", gates, y);
            // bf16 expert outputs take float32 gates (autocast keeps the gating in float32); otherwise one dtype.
            if (!(y.DType == DType.BFloat16 && gates.DType == DType.Float32)) Ops.SameDType("moe_combine", gates, y);
            if (present.Count > 0 && y.DType != present[0].DType)
                throw new ArgumentException($"moe_combine: expert {i} output is {y.DType.Name()}, an earlier one {present[0].DType.Name()}");
            h = y.Shape[1];
            if (y.Shape[0] > 0) present.Add(y);
        }
        if (h < 0) throw new ArgumentException("moe_combine: no expert produced an output, so the feature size is unknown");
        var be = gates.Backend;
        int n = routing.Rows;
        // Gather the expert outputs into one [N, H] buffer in expert order (the layout dispatch produced).
        var ybufS = be.Allocate(present.Count > 0 ? present[0].DType : gates.DType, n * h);
        int[] starts = new int[present.Count];
        {
            int pi = 0;
            for (int i = 0; i < e; i++)
            {
                var y = expertOutputs[i];
                if (y is null || y.Shape[0] == 0) continue;
                starts[pi++] = routing.Starts[i];
                var dst = new Layout((int[])y.Shape.Clone(), [h, 1], routing.Starts[i] * h);
                be.CopyInto(y.StorageView, new(ybufS, dst));
            }
        }
        var ybuf = Tensor.FromStorage(ybufS, [n, h]);   // ybuf: [N, H]
        // The index primitives read dense Int32 buffers from element 0.
        var top = topIndices.IsContiguous && topIndices.Layout.Offset == 0 ? topIndices.Detach() : topIndices.Contiguous();
        var outS = be.MoeCombine(ybuf.StorageView, gates.StorageView, top.Storage, routing.SlotOf.Storage, k);
        var output = Tensor.FromStorage(outS, [b, h]);
        var slot = routing.SlotOf;
        Tensor[] inputs = [gates, .. present];
        Graph.Record(output, "moe_combine", inputs, g =>
        {
            var (gy, gg) = be.MoeCombineBackward(g.StorageView, ybuf.StorageView, gates.StorageView, top.Storage, slot.Storage, k);
            var result = new Tensor?[inputs.Length];
            result[0] = Tensor.FromStorage(gg, [b, e]);
            using var gyT = Tensor.FromStorage(gy, [n, h]);
            for (int i = 0; i < present.Count; i++) result[i + 1] = gyT.Narrow(0, starts[i], present[i].Shape[0]);
            return result;
        }, saved: [ybuf, top, slot]);
        ybuf.Dispose();   // both deferred while the backward needs them
        top.Dispose();
        return output;
    }

    /// <summary>Squared coefficient of variation of v: [E]: population variance / (mean² + 1e-10).</summary>
    public static Tensor CvSquared(Tensor v)
    {
        if (v.Rank != 1 || v.Count == 0) throw new ShapeException($"moe_cv2: expects a non-empty vector, got {Shapes.Format(v.Shape)}");
        using var mean = Ops.Mean(v);
        using var m2 = Ops.Mul(mean, mean);
        using var den = Ops.AddScalar(m2, 1e-10);
        using var var = Ops.Var(v);
        return Ops.Div(var, den);
    }

    /// <summary>aux = w_imp · CV²(importance) + w_load · CV²(load).</summary>
    public static Tensor AuxLoss(GatingResult gating, double importanceWeight, double loadWeight)
    {
        using var ci = CvSquared(gating.Importance);
        using var cl = CvSquared(gating.Load);
        using var a = Ops.MulScalar(ci, importanceWeight);
        using var l = Ops.MulScalar(cl, loadWeight);
        return Ops.Add(a, l);
    }
}
