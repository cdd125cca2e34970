using MtlMoe.Engine;
using MtlMoe.Engine.MoE;

namespace MtlMoe.Tests.Cuda;

/// <summary>
/// The fused gating pass on CUDA (moe_gating_fused(_k2)_f32 and its backward: one launch each) against the CPU's fused
/// op, and bit-identical from run to run. The sums run in another fixed order than the CPU's, so values agree to float32
/// tolerance; the chosen experts agree exactly on random inputs.
/// </summary>
[Category("Cuda")]
[NonParallelizable] // one GPU context and stream, and the caching allocator's counters, shared by every CUDA test
public class CudaFusedGatingTests
{
    [SetUp]
    public void RequireCuda() => CudaTestEnv.RequireCuda();

    static Device Gpu => CudaParity.Gpu;

    // (B, E, k, noisy): the k ≤ 2 kernels, the general ones, block and group edges (64 rows per block, 32 blocks per
    // group), k = E, noiseless, and E > 64 (the composed path on the GPU).
    static readonly object[] Shapes =
    [
        new object[] { 37, 8, 2, true },
        new object[] { 64, 16, 1, true },
        new object[] { 2049, 64, 2, true },
        new object[] { 4097, 16, 3, true },
        new object[] { 130, 4, 4, true },
        new object[] { 300, 32, 2, false },
        new object[] { 21, 96, 3, true },
    ];

    static (GatingResult G, Tensor Clean, Tensor? Raw) Run(Device dev, int b, int e, int k, bool noisy, ulong seed)
    {
        var clean = Tensor.RandN([b, e], new Rng(seed)).To(dev).RequireGrad();
        var raw = noisy ? Tensor.RandN([b, e], new Rng(seed + 1)).To(dev).RequireGrad() : null;
        var eps = noisy ? Tensor.RandN([b, e], new Rng(seed + 2)).To(dev) : null;
        var g = MoeOps.NoisyTopKGatingWithAux(clean, raw, eps, k, 1e-2, 0.01, 0.02);
        var w = Tensor.RandN([b, e], new Rng(seed + 3)).To(dev);
        Ops.Add(Ops.Sum(Ops.Mul(g.Gates, w)), g.Aux!).Backward();
        return (g, clean, raw);
    }

    [TestCaseSource(nameof(Shapes))]
    public void ForwardAndBackwardMatchTheCpu(int b, int e, int k, bool noisy)
    {
        var (c, cc, rc) = Run(Device.Cpu, b, e, k, noisy, 41);
        var (g, cg, rg) = Run(Gpu, b, e, k, noisy, 41);
        Assert.That(g.TopIndices.ToArray<int>(), Is.EqualTo(c.TopIndices.ToArray<int>()), "top-k experts");
        CudaParity.AssertClose("gates", c.Gates, g.Gates, 1e-5);
        CudaParity.AssertClose("importance", c.Importance, g.Importance, 1e-5);
        CudaParity.AssertClose("load", c.Load, g.Load, 1e-4);
        CudaParity.AssertClose("aux, CV²(importance), CV²(load)", c.Flat!.Narrow(0, c.Flat.Count - 3, 3), g.Flat!.Narrow(0, g.Flat.Count - 3, 3), 1e-4);
        CudaParity.AssertClose("d clean", cc.Grad!, cg.Grad!, 1e-4);
        if (noisy) CudaParity.AssertClose("d raw noise", rc!.Grad!, rg!.Grad!, 1e-4);
    }

    [Test]
    public void TheFusedPassIsBitIdenticalRunToRun()
    {
        // 65536 rows: 1024 blocks in 32 groups, every level of the fixed-order sum and the block election in use.
        var (a, ca, ra) = Run(Gpu, 65536, 64, 2, true, 51);
        var (b, cb, rb) = Run(Gpu, 65536, 64, 2, true, 51);
        CudaParity.AssertSameBits("packed output", a.Flat!, b.Flat!);
        CudaParity.AssertSameBits("d clean", ca.Grad!, cb.Grad!);
        CudaParity.AssertSameBits("d raw", ra!.Grad!, rb!.Grad!);
        // A third run after other launches: the election counters were left at zero.
        var (c, _, _) = Run(Gpu, 1000, 16, 2, true, 51);
        var (d, _, _) = Run(Gpu, 65536, 64, 2, true, 51);
        CudaParity.AssertSameBits("packed output after other batch sizes", a.Flat!, d.Flat!);
        Assert.That(c.Gates.Shape, Is.EqualTo(new[] { 1000, 16 }));
    }
}
