using MtlMoe.Engine;
using MtlMoe.Engine.MoE;
using MtlMoe.Tests.Support;
using static MtlMoe.Tests.Support.GradCheck;

namespace MtlMoe.Tests.Moe;

public class MoeGradTests
{
    private static Tensor Noise(int b, int e) => Tensor.RandN([b, e], new Rng(99), DType.Float64);

    [Test]
    public void GatingGatesGradient() => GradCheck.Assert("moe_gating gates", x =>
    {
        using var eps = Noise(5, 4);
        using var clean = x[0].T;   // non-contiguous logits
        using var g = MoeOps.NoisyTopKGating(clean, x[1], eps, 2);
        return g.Gates.Contiguous();
    }, Rand([4, 5], 1, -2, 2), Rand([5, 4], 2));

    [Test]
    public void GatingLoadGradient() => GradCheck.Assert("moe_gating load", x =>
    {
        using var eps = Noise(6, 5);
        using var g = MoeOps.NoisyTopKGating(x[0], x[1], eps, 2);
        return g.Load.Contiguous();
    }, Rand([6, 5], 3, -2, 2), Rand([6, 5], 4));

    [Test]
    public void GatingAuxLossGradientKOne() => GradCheck.Assert("moe_gating aux k=1", x =>
    {
        using var eps = Noise(6, 4);
        using var g = MoeOps.NoisyTopKGating(x[0], x[1], eps, 1);
        return MoeOps.AuxLoss(g, 1, 1);
    }, Rand([6, 4], 5, -2, 2), Rand([6, 4], 6));

    [Test]
    public void GatingWithoutNoiseGradient() => GradCheck.Assert("moe_gating eval", x =>
    {
        using var g = MoeOps.NoisyTopKGating(x[0], null, null, 3);
        using var a = MoeOps.AuxLoss(g, 1, 1);
        using var s = Ops.Sum(g.Gates, [1]);
        using var q = Ops.Mul(g.Gates, g.Gates);
        return Ops.Add(q, a);
    }, Rand([5, 4], 7, -2, 2));

    [Test]
    public void DispatchGradient()
    {
        using var top = Tensor.FromArray(new[] { 1, 0, 1, 2, 0, 1 }, [3, 2]);
        using var routing = MoeOps.Route(top, 3);
        GradCheck.Assert("moe_dispatch", x => { using var xt = x[0].T; return MoeOps.Dispatch(xt, routing); }, Rand([4, 3], 8));
    }

    [Test]
    public void CombineGradient()
    {
        using var top = Tensor.FromArray(new[] { 1, 0, 1, 2, 0, 1 }, [3, 2]);
        using var routing = MoeOps.Route(top, 3, capacity: 2);   // drops (row 2, expert 1)
        GradCheck.Assert("moe_combine", x => { using var y1 = x[2].T; return MoeOps.Combine([x[1], y1, x[3]], x[0], top, routing); },
            Rand([3, 3], 9), Rand([2, 37], 10), Rand([37, 2], 11), Rand([1, 37], 12));   // H = 37 > 32 exercises the warp-order dot
    }

    // Whole layer: x, W_g, W_noise and three experts tanh(slice · W_e), with ε fixed by reseeding before every evaluation.
    private static MoeForwardResult Layer(Tensor[] x, MoeOptions o, Rng rng)
    {
        rng.Reseed(11);
        var experts = Enumerable.Range(0, o.NumExperts).Select(e => (Func<Tensor, Tensor>)(s =>
        {
            using var h = Ops.MatMul(s, x[3 + e]);
            return Ops.Tanh(h);
        })).ToList();
        return MoeFunctional.Forward(x[0], x[1], x[2], experts, o, training: true, rng);
    }

    private static Tensor[] LayerInputs(int b, int d, int e, int h, ulong seed)
    {
        var list = new List<Tensor> { Rand([b, d], seed), Rand([d, e], seed + 1, -2, 2), Rand([d, e], seed + 2) };
        for (int i = 0; i < e; i++) list.Add(Rand([d, h], seed + 3 + (ulong)i));
        return [.. list];
    }

    [Test]
    public void WholeLayerOutputGradient()
    {
        var o = new MoeOptions { NumExperts = 3, K = 2 };
        var rng = new Rng(0);
        GradCheck.Assert("moe layer output", x => { var r = Layer(x, o, rng); r.AuxLoss.Dispose(); return r.Output; }, LayerInputs(7, 3, 3, 2, 20));
    }

    [Test]
    public void WholeLayerAuxLossGradient()
    {
        var o = new MoeOptions { NumExperts = 4, K = 2, ImportanceWeight = 1, LoadWeight = 1 };
        var rng = new Rng(0);
        GradCheck.Assert("moe layer aux", x => { var r = Layer(x, o, rng); r.Output.Dispose(); return r.AuxLoss; }, LayerInputs(8, 3, 4, 2, 40));
    }

    [Test]
    public void WholeLayerOutputPlusAuxWithCapacityAndKOne()
    {
        var o = new MoeOptions { NumExperts = 3, K = 1, CapacityFactor = 1.0, ImportanceWeight = 0.5, LoadWeight = 0.5 };
        var rng = new Rng(0);
        GradCheck.Assert("moe layer k=1 capacity", x =>
        {
            var r = Layer(x, o, rng);
            using var _o = r.Output; using var _a = r.AuxLoss;
            return Ops.Add(r.Output, r.AuxLoss);
        }, LayerInputs(9, 3, 3, 2, 60));
    }
}
