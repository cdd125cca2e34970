using MtlMoe.Engine;
using MtlMoe.Engine.MoE;
using MtlMoe.Engine.NN;

namespace MtlMoe.Tests.Cuda;

/// <summary>MoE gating, routing, dispatch and combine on CUDA against the CPU reference, and bit-identical run to run.</summary>
[Category("Cuda")]
[NonParallelizable] // one GPU context and stream, and the caching allocator's counters, shared by every CUDA test
public class CudaMoeTests
{
    [SetUp]
    public void RequireCuda() => CudaTestEnv.RequireCuda();

    static Device Gpu => CudaParity.Gpu;

    // (B, E, k, noisy): warp path (E ≤ 64, k ≤ 8), k = E, noiseless, and the block path (E > 64).
    static readonly object[] GatingShapes =
    [
        new object[] { 37, 8, 2, true },
        new object[] { 64, 4, 4, true },
        new object[] { 19, 16, 1, false },
        new object[] { 21, 96, 3, true },
        new object[] { 9, 70, 9, false },
    ];

    [TestCaseSource(nameof(GatingShapes))]
    public void GatingForwardAndBackwardMatchTheCpu(int b, int e, int k, bool noisy)
    {
        var clean = Tensor.RandN([b, e], new Rng(1));
        var raw = noisy ? Tensor.RandN([b, e], new Rng(2)) : null;
        var eps = noisy ? Tensor.RandN([b, e], new Rng(3)) : null;
        var cg = clean.To(Gpu); var rg = raw?.To(Gpu); var ng = eps?.To(Gpu);
        foreach (var t in new[] { clean, raw, cg, rg }) if (t is not null) t.RequiresGrad = true;
        using var c = MoeOps.NoisyTopKGating(clean, raw, eps, k);
        using var g = MoeOps.NoisyTopKGating(cg, rg, ng, k);
        Assert.That(g.TopIndices.ToArray<int>(), Is.EqualTo(c.TopIndices.ToArray<int>()), "top-k experts");
        CudaParity.AssertClose("gates", c.Gates, g.Gates, 1e-5);
        CudaParity.AssertClose("importance", c.Importance, g.Importance, 1e-5);
        CudaParity.AssertClose("load", c.Load, g.Load, 1e-4);
        var w = Tensor.RandN([b + 2, e], new Rng(4));
        Ops.Sum(Ops.Mul(c.Packed, w)).Backward();
        Ops.Sum(Ops.Mul(g.Packed, w.To(Gpu))).Backward();
        CudaParity.AssertClose("d clean", clean.Grad!, cg.Grad!, 1e-4);
        if (noisy) CudaParity.AssertClose("d raw noise", raw!.Grad!, rg!.Grad!, 1e-4);
    }

    [Test]
    public void GatingIsBitIdenticalRunToRun()
    {
        var clean = Tensor.RandN([4096, 16], new Rng(5)).To(Gpu);
        var raw = Tensor.RandN([4096, 16], new Rng(6)).To(Gpu);
        var eps = Tensor.RandN([4096, 16], new Rng(7)).To(Gpu);
        using var a = MoeOps.NoisyTopKGating(clean, raw, eps, 2);
        using var b = MoeOps.NoisyTopKGating(clean, raw, eps, 2);
        CudaParity.AssertSameBits("packed gating output", a.Packed, b.Packed);
        Assert.That(b.TopIndices.ToArray<int>(), Is.EqualTo(a.TopIndices.ToArray<int>()));
    }

    [TestCase(-1)]
    [TestCase(3)]
    public void RoutingDispatchAndCombineMatchTheCpuAndRepeatBitForBit(int capacity)
    {
        const int b = 300, e = 6, k = 2, d = 5;
        var rng = new Rng(11);
        var top = new int[b * k];
        for (int i = 0; i < b; i++) { top[i * k] = rng.NextInt(e); top[i * k + 1] = (top[i * k] + 1 + rng.NextInt(e - 1)) % e; }
        var topC = Tensor.FromArray(top, [b, k]);
        var topG = topC.To(Gpu);
        using var rc = MoeOps.Route(topC, e, capacity);
        using var rg = MoeOps.Route(topG, e, capacity);
        Assert.That(rg.Requested, Is.EqualTo(rc.Requested));
        Assert.That(rg.Kept, Is.EqualTo(rc.Kept));
        Assert.That(rg.Dropped, Is.EqualTo(rc.Dropped));
        Assert.That(rg.SlotOf.ToArray<int>(), Is.EqualTo(rc.SlotOf.ToArray<int>()));
        Assert.That(rg.SourceRow.ToArray<int>(), Is.EqualTo(rc.SourceRow.ToArray<int>()));

        var x = Tensor.RandN([b, d], new Rng(12)); x.RequiresGrad = true;
        var xg = x.Detach().To(Gpu); xg.RequiresGrad = true;
        var gates = Ops.Softmax(Tensor.RandN([b, e], new Rng(13)), 1); gates.RequiresGrad = true;
        var gatesG = gates.Detach().To(Gpu); gatesG.RequiresGrad = true;
        Tensor Run(Tensor xx, Tensor gg, Tensor tt, MoeRouting r)
        {
            var buf = MoeOps.Dispatch(xx, r);                        // [N, d]; experts: a scaling per expert
            var outs = Enumerable.Range(0, e).Select(i => r.Kept[i] == 0 ? null : Ops.MulScalar(buf.Narrow(0, r.Starts[i], r.Kept[i]), i + 1.0)).ToList();
            return MoeOps.Combine(outs, gg, tt, r);
        }
        var yc = Run(x, gates, topC, rc);
        var yg = Run(xg, gatesG, topG, rg);
        var yg2 = Run(xg, gatesG, topG, rg);
        CudaParity.AssertClose("combine", yc, yg, 1e-6);
        CudaParity.AssertSameBits("combine", yg, yg2);
        var w = Tensor.RandN([b, d], new Rng(14));
        Ops.Sum(Ops.Mul(yc, w)).Backward();
        Ops.Sum(Ops.Mul(yg, w.To(Gpu))).Backward();
        CudaParity.AssertClose("d x", x.Grad!, xg.Grad!, 1e-6);
        CudaParity.AssertClose("d gates", gates.Grad!, gatesG.Grad!, 1e-5);
    }

    [Test]
    public void MoeLayerTrainingStepMatchesTheCpu()
    {
        MoeLayer Make() => new(8, new MoeOptions { NumExperts = 4, K = 2 }, i => new Linear(8, 6, rng: new Rng((ulong)(20 + i))), new Rng(99));
        using var cpu = Make();
        using var gpu = Make();
        using (MtlMoe.Engine.Autograd.GradMode.NoGrad())
        {
            cpu.Gate.WGate.CopyFrom(Tensor.RandN([8, 4], new Rng(30)));
            cpu.Gate.WNoise.CopyFrom(Tensor.RandN([8, 4], new Rng(31)));
            gpu.Gate.WGate.CopyFrom(Tensor.RandN([8, 4], new Rng(30)));
            gpu.Gate.WNoise.CopyFrom(Tensor.RandN([8, 4], new Rng(31)));
        }
        gpu.To(Gpu);
        var x = Tensor.RandN([32, 8], new Rng(32));
        var yc = cpu.Forward(x);
        var yg = gpu.Forward(x.To(Gpu));
        Assert.That(gpu.LastMetrics!.ExpertIndices, Is.EqualTo(cpu.LastMetrics!.ExpertIndices));
        CudaParity.AssertClose("layer output", yc, yg, 1e-4);
        CudaParity.AssertClose("aux loss", cpu.LastAuxLoss!, gpu.LastAuxLoss!, 1e-4);
        Ops.Add(Ops.Sum(yc), cpu.LastAuxLoss!).Backward();
        Ops.Add(Ops.Sum(yg), gpu.LastAuxLoss!).Backward();
        foreach (var ((name, pc), (_, pg)) in cpu.NamedParameters().Zip(gpu.NamedParameters()))
            CudaParity.AssertClose("grad " + name, pc.Grad!, pg.Grad!, 1e-4);
    }
}
