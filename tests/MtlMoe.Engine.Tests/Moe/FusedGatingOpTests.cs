using MtlMoe.Engine;
using MtlMoe.Engine.MoE;
using MtlMoe.Tests.Support;


namespace MtlMoe.Tests.Moe;

/// <summary>
/// The fused gating op (gating + importance + load + aux loss, one op, one backward): on the CPU it equals the composed
/// ops — <see cref="MoeOps.NoisyTopKGating"/> followed by <see cref="MoeOps.AuxLoss"/> — bit for bit, forward and
/// backward, and its backward passes a float64 finite-difference check.
/// </summary>
public class FusedGatingOpTests
{
    static int[] Bits(Tensor t) => t.ToArray<float>().Select(BitConverter.SingleToInt32Bits).ToArray();

    /// <summary>
    /// Both ways from the same logits: forward values and the gradients of clean and raw for a loss that uses the gates
    /// (a fixed projection, as the combine does), the aux loss, or both.
    /// </summary>
    [TestCase(37, 4, 2, true, "both")]
    [TestCase(37, 4, 2, true, "aux")]
    [TestCase(37, 4, 2, true, "gates")]
    [TestCase(64, 16, 1, true, "both")]
    [TestCase(9, 70, 3, true, "both")]     // E > 64: the CUDA backend's block path
    [TestCase(40, 8, 8, true, "both")]     // k = E
    [TestCase(23, 6, 2, false, "both")]    // noiseless (eval): load is the routed count
    public void EqualsTheComposedOpsBitForBit(int b, int e, int k, bool noisy, string uses)
    {
        var rng = new Rng((ulong)(b * 131 + e * 7 + k));
        using var clean0 = Tensor.RandN([b, e], rng);
        using var raw0 = Tensor.RandN([b, e], rng);
        using var eps = Tensor.RandN([b, e], rng);
        using var proj = Tensor.RandN([b, e], rng);
        const double wImp = 0.01, wLoad = 0.02;
        (GatingResult G, Tensor Aux, Tensor Clean, Tensor? Raw) Run(bool fused)
        {
            var clean = clean0.Clone().RequireGrad();
            var raw = noisy ? raw0.Clone().RequireGrad() : null;
            var g = fused
                ? MoeOps.NoisyTopKGatingWithAux(clean, raw, noisy ? eps : null, k, 1e-2, wImp, wLoad)
                : MoeOps.NoisyTopKGating(clean, raw, noisy ? eps : null, k, 1e-2);
            var aux = fused ? g.Aux! : MoeOps.AuxLoss(g, wImp, wLoad);
            using (var weighted = Ops.Mul(g.Gates, proj))
            using (var gs = Ops.Sum(weighted))
            using (var loss = uses switch { "aux" => aux.Reshape([]), "gates" => gs.Reshape([]), _ => Ops.Add(gs, aux) })
                loss.Backward();
            return (g, aux, clean, raw);
        }
        var (gc, auxC, cleanC, rawC) = Run(fused: false);
        var (gf, auxF, cleanF, rawF) = Run(fused: true);
        using (gc) using (gf) using (auxC) using (auxF)
        {
            Assert.That(Bits(gf.Gates.Contiguous()), Is.EqualTo(Bits(gc.Gates.Contiguous())), "gates");
            Assert.That(Bits(gf.Importance.Contiguous()), Is.EqualTo(Bits(gc.Importance.Contiguous())), "importance");
            Assert.That(Bits(gf.Load.Contiguous()), Is.EqualTo(Bits(gc.Load.Contiguous())), "load");
            Assert.That(gf.TopIndices.ToArray<int>(), Is.EqualTo(gc.TopIndices.ToArray<int>()), "top indices");
            Assert.That(Bits(auxF.Contiguous()), Is.EqualTo(Bits(auxC.Contiguous())), "aux");
            Assert.That(Bits(cleanF.Grad!), Is.EqualTo(Bits(cleanC.Grad!)), "d clean");
            if (noisy) Assert.That(Bits(rawF!.Grad!), Is.EqualTo(Bits(rawC!.Grad!)), "d raw");
        }
    }

    [Test]
    public void TheTailHoldsAuxAndBothCvSquares()
    {
        using var clean = Tensor.RandN([12, 5], new Rng(3));
        using var g = MoeOps.NoisyTopKGatingWithAux(clean, null, null, 2, 1e-2, 0.5, 0.25);
        using var ci = MoeOps.CvSquared(g.Importance);
        using var cl = MoeOps.CvSquared(g.Load);
        var tail = g.Flat!.ToArray<float>()[^3..];
        Assert.That(tail, Is.EqualTo(new[] { g.Aux!.ToArray<float>()[0], ci.ToArray<float>()[0], cl.ToArray<float>()[0] }));
        Assert.That(g.Aux!.Shape, Is.Empty, "aux is a scalar");
    }

    // Gates, importance, load and aux (not the CV² entries, which carry no gradient) of the fused op.
    static Tensor FusedOutputs(Tensor clean, Tensor? raw, Tensor? eps, int k)
    {
        int b = clean.Shape[0], e = clean.Shape[1];
        using var g = MoeOps.NoisyTopKGatingWithAux(clean, raw, eps, k, 1e-2, 0.7, 0.3);
        using var all = g.Flat!.Narrow(0, 0, (b + 2) * e + 1);
        return all.Contiguous();
    }

    [Test]
    public void BackwardPassesTheFiniteDifferenceCheck() => GradCheck.Assert("moe_gating_fused", x =>
    {
        using var eps = Tensor.RandN([6, 5], new Rng(21), DType.Float64);
        return FusedOutputs(x[0], x[1], eps, 2);
    }, GradCheck.Rand([6, 5], 22, -2, 2), GradCheck.Rand([6, 5], 23));

    [Test]
    public void NoiselessBackwardPassesTheFiniteDifferenceCheck() => GradCheck.Assert("moe_gating_fused eval", x => FusedOutputs(x[0], null, null, 3),
        GradCheck.Rand([7, 4], 24, -2, 2));

    [Test]
    public void Bf16LogitsAreRefused()
    {
        using var clean = Tensor.RandN([4, 3], new Rng(5)).To(DType.BFloat16);
        var err = Assert.Throws<NotSupportedException>(() => MoeOps.NoisyTopKGatingWithAux(clean, null, null, 1, 1e-2, 1, 1).Dispose());
        Assert.That(err!.Message, Does.Contain("moe_gating").And.Contain("float32"));
    }
}
