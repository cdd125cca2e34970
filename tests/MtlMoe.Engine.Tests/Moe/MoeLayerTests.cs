using MtlMoe.Engine;
using MtlMoe.Engine.MoE;
using MtlMoe.Engine.NN;

namespace MtlMoe.Tests.Moe;

public class MoeLayerTests
{
    private static MoeLayer Make(int d, int h, MoeOptions o, ulong seed = 1)
    {
        var layer = new MoeLayer(d, o, i => new Linear(d, h, rng: new Rng(seed + (ulong)i)), new Rng(seed + 100));
        using var _ = Engine.Autograd.GradMode.NoGrad();
        // Non-zero gate weights so that routing is not all ties.
        layer.Gate.WGate.CopyFrom(Tensor.RandN(layer.Gate.WGate.Shape, new Rng(seed + 200)));
        layer.Gate.WNoise.CopyFrom(Tensor.RandN(layer.Gate.WNoise.Shape, new Rng(seed + 300)));
        return layer;
    }

    [Test]
    public void ParameterNamesAndZeroInitialGates()
    {
        using var layer = new MoeLayer(4, new MoeOptions { NumExperts = 3, K = 2 }, _ => new Linear(4, 2));
        var names = layer.NamedParameters().Select(p => p.Name).ToList();
        Assert.That(names, Is.EqualTo(new[] { "gate.w_gate", "gate.w_noise", "experts.0.weight", "experts.0.bias",
            "experts.1.weight", "experts.1.bias", "experts.2.weight", "experts.2.bias" }));
        Assert.That(layer.Gate.WGate.ToDoubleArray(), Is.All.EqualTo(0.0));
        Assert.That(layer.Gate.WNoise.ToDoubleArray(), Is.All.EqualTo(0.0));
        layer.Eval();
        using var x = Tensor.Rand([5, 4], new Rng(3));
        using var y = layer.Forward(x);
        var m = layer.LastMetrics!;
        Assert.That(m.ExpertIndices, Is.EqualTo(Enumerable.Repeat(new[] { 0, 1 }, 5).SelectMany(a => a)), "zero logits tie → lowest indices");
        Assert.That(m.Gates, Is.All.EqualTo(0.5));
        Assert.That(y.Shape, Is.EqualTo(new[] { 5, 2 }));
    }

    [Test]
    public void EvalModeHasNoNoiseAndDrawsNothing()
    {
        var o = new MoeOptions { NumExperts = 4, K = 2 };
        using var layer = Make(6, 3, o);
        using var x = Tensor.Rand([16, 6], new Rng(5));
        layer.Eval();
        var before = layer.NoiseRng.GetState();
        using var y1 = layer.Forward(x);
        Assert.That(layer.NoiseRng.GetState(), Is.EqualTo(before), "eval must not draw noise");
        using var noiseless = Make(6, 3, new MoeOptions { NumExperts = 4, K = 2, NoisyGating = false });
        using var y2 = noiseless.Forward(x);   // training mode, but noise off
        Assert.That(y1.ToArray<float>(), Is.EqualTo(y2.ToArray<float>()));
        // The load is the routed count in eval.
        Assert.That(layer.LastMetrics!.LoadEstimate, Is.EqualTo(layer.LastMetrics.RoutedRows.Select(c => (double)c)));
        layer.Train();
        using var y3 = layer.Forward(x);
        Assert.That(y3.ToArray<float>(), Is.Not.EqualTo(y1.ToArray<float>()), "training adds noise");
    }

    [Test]
    public void TwoRunsAreBitIdentical()
    {
        var o = new MoeOptions { NumExperts = 8, K = 2 };
        (float[] y, float[] aux, float[][] grads, int[] idx) Run()
        {
            using var layer = Make(32, 16, o, seed: 7);
            using var x = Tensor.RandN([600, 32], new Rng(8)).RequireGrad();
            using var y = layer.Forward(x);
            using var s = Ops.Sum(y);
            using var loss = Ops.Add(s, layer.LastAuxLoss!);
            loss.Backward();
            var grads = layer.Parameters().Select(p => p.Grad!.ToArray<float>()).Append(x.Grad!.ToArray<float>()).ToArray();
            return (y.ToArray<float>(), layer.LastAuxLoss!.ToArray<float>(), grads, layer.LastMetrics!.ExpertIndices);
        }
        var a = Run(); var b = Run();
        Assert.That(b.y, Is.EqualTo(a.y));
        Assert.That(b.aux, Is.EqualTo(a.aux));
        Assert.That(b.idx, Is.EqualTo(a.idx));
        for (int i = 0; i < a.grads.Length; i++) Assert.That(b.grads[i], Is.EqualTo(a.grads[i]), $"gradient {i}");
    }

    [Test]
    public void MetricsDescribeTheRouting()
    {
        var o = new MoeOptions { NumExperts = 4, K = 2 };
        using var layer = Make(5, 2, o);
        layer.Eval();
        using var x = Tensor.Rand([10, 5], new Rng(9));
        using var y = layer.Forward(x);
        var m = layer.LastMetrics!;
        Assert.That(m.ExpertIndices, Has.Length.EqualTo(20));
        Assert.That(m.RoutedRows.Sum(), Is.EqualTo(20));
        for (int e = 0; e < 4; e++) Assert.That(m.Load[e], Is.EqualTo(m.RoutedRows[e] / 5.0).Within(1e-12));
        Assert.That(m.Importance.Sum(), Is.EqualTo(10).Within(1e-5), "each row's gates sum to one");
        Assert.That(m.DeadExperts, Is.EqualTo(m.RoutedRows.Count(c => c == 0)));
        for (int b = 0; b < 10; b++) Assert.That(m.Gates[2 * b] + m.Gates[2 * b + 1], Is.EqualTo(1).Within(1e-6));
        Assert.That(m.AuxLoss, Is.EqualTo(layer.LastAuxLoss!.Item()));
    }

    [Test]
    public void BadArgumentsGiveClearErrors()
    {
        Assert.That(() => new MoeLayer(4, new MoeOptions { NumExperts = 3, K = 4 }, _ => new Linear(4, 2)),
            Throws.ArgumentException.With.Message.Contains("k must be in [1, numExperts = 3], got 4"));
        Assert.That(() => new MoeLayer(4, new MoeOptions { NumExperts = 3, K = 0 }, _ => new Linear(4, 2)),
            Throws.ArgumentException.With.Message.Contains("got 0"));
        Assert.That(() => new MoeLayer(4, new MoeOptions { NumExperts = 0, K = 1 }, _ => new Linear(4, 2)),
            Throws.ArgumentException.With.Message.Contains("numExperts must be at least 1, got 0"));
        using var clean = Tensor.Zeros([2, 3]);
        Assert.That(() => MoeOps.NoisyTopKGating(clean, null, null, 4), Throws.ArgumentException.With.Message.Contains("moe_gating: k = 4 must be in [1, E = 3] for logits [2, 3]"));
        using var empty = Tensor.Zeros([2, 0]);
        Assert.That(() => MoeOps.NoisyTopKGating(empty, null, null, 1), Throws.TypeOf<ShapeException>().With.Message.Contains("[2, 0] have no experts"));
        using var raw = Tensor.Zeros([2, 4]);
        Assert.That(() => MoeOps.NoisyTopKGating(clean, raw, raw, 1), Throws.TypeOf<ShapeException>().With.Message.Contains("clean [2, 3], noise logits [2, 4]"));
        using var layer = new MoeLayer(4, new MoeOptions { NumExperts = 3, K = 2 }, _ => new Linear(4, 2));
        using var x = Tensor.Zeros([5, 6]);
        Assert.That(() => layer.Forward(x), Throws.TypeOf<ShapeException>().With.Message.Contains("input [5, 6] does not match gate weight [4, 3]"));
        using var top = Tensor.FromArray(new[] { 0, 1 }, [1, 2]);
        using var r = MoeOps.Route(top, 2);
        using var x2 = Tensor.Zeros([3, 4]);
        Assert.That(() => MoeOps.Dispatch(x2, r), Throws.TypeOf<ShapeException>().With.Message.Contains("moe_dispatch: input [3, 4] does not match a routing of 1 rows"));
        using var gates = Tensor.Zeros([1, 2]);
        using var y0 = Tensor.Zeros([1, 3]); using var y1 = Tensor.Zeros([2, 3]);
        Assert.That(() => MoeOps.Combine([y0, y1], gates, top, r), Throws.TypeOf<ShapeException>().With.Message.Contains("moe_combine: expert 1 output [2, 3] does not match its 1 rows"));
        using var bad = Tensor.FromArray(new[] { 0, 5 }, [1, 2]);
        Assert.That(() => MoeOps.Route(bad, 2), Throws.InstanceOf<ArgumentException>().With.Message.Contains("expert index 5"));
    }
}
