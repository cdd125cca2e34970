using MtlMoe.Engine;
using MtlMoe.Engine.IO;
using MtlMoe.Engine.Optim;

namespace MtlMoe.Tests.NnOptim;

public class OptimizerStateTests
{
    private static Tensor[] MakeParams(ulong seed) =>
        [Tensor.Rand([3, 4], new Rng(seed)).RequireGrad(), Tensor.Rand([4], new Rng(seed + 1)).RequireGrad()];

    private static void SetGrads(Tensor[] ps, int step)
    {
        for (int i = 0; i < ps.Length; i++)
        {
            ps[i].ZeroGrad();
            ps[i].Grad = Tensor.Rand(ps[i].Shape, new Rng((ulong)(100 * step + i)), -1, 1);
        }
    }

    private static void Free(Tensor[] ps) { foreach (var p in ps) { p.ZeroGrad(); p.Dispose(); } }

    [TestCase("sgd")]
    [TestCase("adamw")]
    public void StateRoundTripContinuesIdentically(string kind)
    {
        Optimizer Make(Tensor[] ps) => kind == "sgd" ? new SGD(ps, 0.1, momentum: 0.9, nesterov: true) : new AdamW(ps, 0.01);
        var a = MakeParams(1); var b = MakeParams(1);
        using var optA = Make(a);
        for (int s = 0; s < 3; s++) { SetGrads(a, s); optA.Step(); }

        // b gets a's parameters and optimizer state through a safetensors file, then both continue.
        var state = optA.StateTensors();
        string path = Path.Combine(Path.GetTempPath(), $"optstate-{Guid.NewGuid():N}.safetensors");
        try
        {
            Safetensors.Save(path, state);
            for (int i = 0; i < a.Length; i++) b[i].CopyFrom(a[i]);
            using var optB = Make(b);
            var loaded = Safetensors.Load(path);
            optB.LoadStateTensors(loaded);
            foreach (var t in loaded.Values) t.Dispose();
            Assert.That(optB.StepCount, Is.EqualTo(3));
            Assert.That(state.Keys, Does.Contain(kind == "sgd" ? "state.1.momentum_buffer" : "state.1.exp_avg_sq"));
            for (int s = 3; s < 5; s++) { SetGrads(a, s); optA.Step(); SetGrads(b, s); optB.Step(); }
            for (int i = 0; i < a.Length; i++) Assert.That(b[i].ToArray<float>(), Is.EqualTo(a[i].ToArray<float>()));
        }
        finally
        {
            File.Delete(path);
            foreach (var t in state.Values) t.Dispose();
            Free(a); Free(b);
        }
    }

    [Test]
    public void LoadRejectsMismatchedShapesAndUnknownNames()
    {
        var ps = MakeParams(3);
        using var opt = new SGD(ps, 0.1, momentum: 0.9);
        using var wrong = Tensor.Zeros([5]);
        var ex = Assert.Throws<ShapeException>(() => opt.LoadStateTensors(new Dictionary<string, Tensor> { ["state.1.momentum_buffer"] = wrong }));
        Assert.That(ex!.Message, Does.Contain("state.1.momentum_buffer").And.Contain("[5]").And.Contain("[4]"));
        var ex2 = Assert.Throws<ArgumentException>(() => opt.LoadStateTensors(new Dictionary<string, Tensor> { ["state.7.momentum_buffer"] = wrong }));
        Assert.That(ex2!.Message, Does.Contain("parameter 7"));
        Assert.Throws<ArgumentException>(() => opt.LoadStateTensors(new Dictionary<string, Tensor> { ["state.0.exp_avg"] = wrong }));
        using var adam = new AdamW(ps);
        using var m = Tensor.Zeros([4]);
        var ex3 = Assert.Throws<ArgumentException>(() => adam.LoadStateTensors(new Dictionary<string, Tensor> { ["state.1.exp_avg"] = m }));
        Assert.That(ex3!.Message, Does.Contain("state.1.step"));
        Free(ps);
    }
}

public class ScheduleAndClipTests
{
    [Test]
    public void ScheduleValuesAtKnownSteps()
    {
        Assert.That(new ConstantLr(0.1).At(1000), Is.EqualTo(0.1));
        var w = new LinearWarmup(1.0, 4);
        Assert.That(new[] { w.At(0), w.At(1), w.At(3), w.At(10) }, Is.EqualTo(new[] { 0.25, 0.5, 1, 1 }));
        var c = new Cosine(1.0, 10, 0.1);
        Assert.That(c.At(0), Is.EqualTo(1.0).Within(1e-15));
        Assert.That(c.At(5), Is.EqualTo(0.55).Within(1e-15));
        Assert.That(c.At(10), Is.EqualTo(0.1));
        Assert.That(c.At(25), Is.EqualTo(0.1));
        var s = new StepDecay(1.0, 3, 0.5);
        Assert.That(new[] { s.At(0), s.At(2), s.At(3), s.At(6), s.At(8) }, Is.EqualTo(new[] { 1, 1, 0.5, 0.25, 0.25 }));
        var wc = LrSchedule.WarmupCosine(1.0, 2, 12);
        Assert.That(wc.At(0), Is.EqualTo(0.5));
        Assert.That(wc.At(1), Is.EqualTo(1.0));
        Assert.That(wc.At(2), Is.EqualTo(1.0).Within(1e-15));
        Assert.That(wc.At(7), Is.EqualTo(0.5).Within(1e-15));
        Assert.That(wc.At(12), Is.EqualTo(0.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => c.At(-1));
        Assert.Throws<ArgumentException>(() => LrSchedule.WarmupCosine(1, 10, 5));
    }

    [Test]
    public void ApplySetsTheOptimizerRate()
    {
        using var p = Tensor.Zeros([2]).RequireGrad();
        using var opt = new SGD([p], 1.0);
        Assert.That(new StepDecay(1.0, 1, 0.5).Apply(opt, 2), Is.EqualTo(0.25));
        Assert.That(opt.LearningRate, Is.EqualTo(0.25));
    }

    [Test]
    public void ClipGradNormScalesAboveTheLimitOnly()
    {
        using var a = Tensor.Zeros([2], DType.Float64).RequireGrad();
        using var b = Tensor.Zeros([1], DType.Float64).RequireGrad();
        using var c = Tensor.Zeros([3], DType.Float64).RequireGrad(); // no gradient: ignored
        a.Grad = Tensor.FromArray(new[] { 3.0, 4.0 });
        b.Grad = Tensor.FromArray(new[] { 12.0 });
        double norm = GradClip.ClipGradNorm([a, b, c], 6.5);
        Assert.That(norm, Is.EqualTo(13.0).Within(1e-12));
        double k = 6.5 / (13 + 1e-6);
        Assert.That(a.Grad.ToArray<double>(), Is.EqualTo(new[] { 3 * k, 4 * k }).Within(1e-12));
        Assert.That(b.Grad!.ToArray<double>(), Is.EqualTo(new[] { 12 * k }).Within(1e-12));
        Assert.That(c.Grad, Is.Null);

        double again = GradClip.ClipGradNorm([a, b], 100);
        Assert.That(again, Is.EqualTo(6.5).Within(1e-5));
        Assert.That(b.Grad!.ToArray<double>(), Is.EqualTo(new[] { 12 * k }).Within(1e-12), "below the limit: unchanged");
        Assert.Throws<ArgumentOutOfRangeException>(() => GradClip.ClipGradNorm([a], 0));
        a.ZeroGrad(); b.ZeroGrad();
    }
}
