using MtlMoe.Engine;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.MoE;

namespace MtlMoe.Tests.Moe;

public class GatingTests
{
    private static Tensor T64(double[] v, params int[] shape) => Tensor.FromArray(v, shape);

    private static double Sig(double x) => 1 / (1 + Math.Exp(-x));

    [Test]
    public void TopTwoWithoutNoiseMatchesHandComputation()
    {
        // Row 0: top two are experts 1 (3) and 2 (2). Row 1: expert 3 (2), then a tie at 0.5 between 0 and 1 → 0.
        using var clean = T64([1, 3, 2, 0, 0.5, 0.5, -1, 2], 2, 4);
        using var g = MoeOps.NoisyTopKGating(clean, null, null, k: 2);
        Assert.That(g.TopIndices.ToArray<int>(), Is.EqualTo(new[] { 1, 2, 3, 0 }));
        double a = Sig(1), c = Sig(1.5);
        var expected = new[] { 0, a, 1 - a, 0, 1 - c, 0, 0, c };
        Assert.That(g.Gates.ToDoubleArray(), Is.EqualTo(expected).Within(1e-15));
        Assert.That(g.Importance.ToDoubleArray(), Is.EqualTo(new[] { 1 - c, a, 1 - a, c }).Within(1e-15));
        Assert.That(g.Load.ToDoubleArray(), Is.EqualTo(new double[] { 1, 1, 1, 1 }), "no noise: load is the routed count");
    }

    [Test]
    public void AllTiedRowGoesToTheLowestIndices()
    {
        using var clean = T64([1, 1, 1, 1], 1, 4);
        using var g = MoeOps.NoisyTopKGating(clean, null, null, k: 2);
        Assert.That(g.TopIndices.ToArray<int>(), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(g.Gates.ToDoubleArray(), Is.EqualTo(new[] { 0.5, 0.5, 0, 0 }));
    }

    [Test]
    public void TieBetweenTheKthAndTheNextGoesToTheLowerIndex()
    {
        using var clean = T64([0, 2, 1, 2], 1, 4);
        using var g = MoeOps.NoisyTopKGating(clean, null, null, k: 1);
        Assert.That(g.TopIndices.ToArray<int>(), Is.EqualTo(new[] { 1 }));
    }

    [Test]
    public void KEqualsEIsAFullSoftmaxAndLoadIsCounts()
    {
        using var clean = T64([0, 1, 2, 1, 1, 0], 2, 3);
        using var raw = T64([0.3, -0.2, 0.1, 0, 0, 0], 2, 3);
        using var eps = T64([0.5, -1, 0.2, 0, 0.1, 0], 2, 3);
        using var g = MoeOps.NoisyTopKGating(clean, raw, eps, k: 3);
        var sp = (double x) => Math.Log(1 + Math.Exp(x)) + 1e-2;
        double[] cl = [0, 1, 2, 1, 1, 0], rw = [0.3, -0.2, 0.1, 0, 0, 0], ep = [0.5, -1, 0.2, 0, 0.1, 0];
        var noisy = cl.Select((c, i) => c + ep[i] * sp(rw[i])).ToArray();
        var gates = g.Gates.ToDoubleArray();
        for (int r = 0; r < 2; r++)
        {
            double z = 0;
            for (int j = 0; j < 3; j++) z += Math.Exp(noisy[r * 3 + j]);
            for (int j = 0; j < 3; j++) Assert.That(gates[r * 3 + j], Is.EqualTo(Math.Exp(noisy[r * 3 + j]) / z).Within(1e-14));
        }
        Assert.That(g.Load.ToDoubleArray(), Is.EqualTo(new double[] { 2, 2, 2 }));
    }

    [Test]
    public void KOneGivesGateOneAtTheArgmax()
    {
        using var clean = T64([0.1, -2, 0.3, 5, 4, 4.5], 2, 3);
        using var g = MoeOps.NoisyTopKGating(clean, null, null, k: 1);
        Assert.That(g.Gates.ToDoubleArray(), Is.EqualTo(new double[] { 0, 0, 1, 1, 0, 0 }));
        Assert.That(g.TopIndices.ToArray<int>(), Is.EqualTo(new[] { 2, 0 }));
    }

    [Test]
    public void NoisyLoadUsesPhiWithNoisyThresholds()
    {
        // σ = softplus(0) + 0.01; noisy = [0.5 + 0.1σ, 0.2 + 2σ, −0.1]; top-2 = [1, 0]; k = 1 routes to expert 1.
        using var clean = T64([0.5, 0.2, -0.1], 1, 3);
        using var raw = T64([0, 0, 0], 1, 3);
        using var eps = T64([0.1, 2, 0], 1, 3);
        using var g = MoeOps.NoisyTopKGating(clean, raw, eps, k: 1);
        double s = Math.Log(2) + 0.01, n0 = 0.5 + 0.1 * s, n1 = 0.2 + 2 * s;
        Assert.That(g.TopIndices.ToArray<int>(), Is.EqualTo(new[] { 1 }));
        Assert.That(g.Gates.ToDoubleArray(), Is.EqualTo(new double[] { 0, 1, 0 }));
        // Inside the top k the threshold is the (k+1)-th largest noisy value (n0), outside the k-th (n1).
        var expected = new[]
        {
            SpecialFunctions.NormCdf((0.5 - n1) / s),
            SpecialFunctions.NormCdf((0.2 - n0) / s),
            SpecialFunctions.NormCdf((-0.1 - n1) / s),
        };
        Assert.That(g.Load.ToDoubleArray(), Is.EqualTo(expected).Within(1e-14));
    }

    [Test]
    public void CvSquaredAndAuxLossMatchHandComputation()
    {
        using var v = T64([1, 2, 3], 3);
        using var cv = MoeOps.CvSquared(v);
        Assert.That(cv.Item(), Is.EqualTo((2.0 / 3) / (4 + 1e-10)).Within(1e-15));

        using var clean = T64([1, 3, 2, 0, 0.5, 0.5, -1, 2], 2, 4);
        using var g = MoeOps.NoisyTopKGating(clean, null, null, k: 2);
        using var aux = MoeOps.AuxLoss(g, 0.3, 0.7);
        double a = Sig(1), c = Sig(1.5);
        double[] imp = [1 - c, a, 1 - a, c];   // mean 0.5
        double varImp = imp.Select(x => (x - 0.5) * (x - 0.5)).Sum() / 4;
        double expected = 0.3 * varImp / (0.25 + 1e-10) + 0.7 * 0;   // load [1, 1, 1, 1] has no variance
        Assert.That(aux.Item(), Is.EqualTo(expected).Within(1e-15));
    }

    [Test]
    public void GatingIsIndependentOfThreadCountAndBitIdentical()
    {
        var rng = new Rng(3);
        using var clean = Tensor.RandN([1000, 16], rng);
        using var raw = Tensor.RandN([1000, 16], rng);
        using var eps = Tensor.RandN([1000, 16], rng);
        float[] Run()
        {
            using var g = MoeOps.NoisyTopKGating(clean, raw, eps, 2);
            using var p = g.Gates.Contiguous();
            return [.. p.ToArray<float>(), .. g.Importance.ToArray<float>(), .. g.Load.ToArray<float>()];
        }
        var a = Run(); var b = Run();
        var c = Cpu.With(Cpu.Defaults with { Threads = 1 }, Run);
        Assert.That(b, Is.EqualTo(a));
        Assert.That(c, Is.EqualTo(a), "single-threaded result differs");
    }

    [Test]
    public void Float32MatchesFloat64()
    {
        var rng = new Rng(4);
        using var c64 = Tensor.RandN([64, 8], rng, DType.Float64);
        using var r64 = Tensor.RandN([64, 8], rng, DType.Float64);
        using var e64 = Tensor.RandN([64, 8], rng, DType.Float64);
        using var c32 = c64.To(DType.Float32); using var r32 = r64.To(DType.Float32); using var e32 = e64.To(DType.Float32);
        using var g64 = MoeOps.NoisyTopKGating(c64, r64, e64, 2);
        using var g32 = MoeOps.NoisyTopKGating(c32, r32, e32, 2);
        Assert.That(g32.TopIndices.ToArray<int>(), Is.EqualTo(g64.TopIndices.ToArray<int>()));
        Assert.That(g32.Load.ToDoubleArray(), Is.EqualTo(g64.Load.ToDoubleArray()).Within(1e-4));
        Assert.That(g32.Gates.ToDoubleArray(), Is.EqualTo(g64.Gates.ToDoubleArray()).Within(1e-6));
    }
}

public class NormCdfF32Tests
{
    [Test]
    public void FastNormCdfIsWithinFloat32Accuracy()
    {
        double worst = 0;
        for (double z = -12; z <= 8; z += 0.01)
        {
            double exact = SpecialFunctions.NormCdf(z), fast = CpuBackend.NormCdfF32(z);
            worst = Math.Max(worst, Math.Abs(fast - exact) / Math.Max(exact, 1e-300));
        }
        Assert.That(worst, Is.LessThan(2e-7));
    }
}
