using MtlMoe.Model.Net;
using MtlMoe.Engine;
using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.Optim;
using MtlMoe.Model.Backbone;

namespace MtlMoe.Tests.Pretrained;

/// <summary>Freezing the first stages of a backbone, and a learning-rate scale per parameter group.</summary>
public class FreezeTests
{
    private static ResNet Net() => new(ResNetDepth.ResNet18, numClasses: 3, widthMultiplier: 0.125, rng: new Rng(5));

    [Test]
    public void FrozenStagesGetNoGradientAndRecordNothing()
    {
        using var net = Net();
        net.Freeze((int)FreezeThrough.Layer2);
        net.Train();
        net.KeepFrozenInEval();
        using var scope = DisposeScope.Begin();
        var x = Tensor.RandN([2, 3, 32, 32], new Rng(6));
        // Nothing below layer3 requires gradients, so autograd records no op there: layer3's first conv gets an input
        // that needs no gradient and computes none for it.
        var l3 = net.ForwardToLayer3(x);
        Assert.That(l3.RequiresGrad, Is.True, "layer3 trains");
        Assert.That(l3.GradFn, Is.Not.Null);
        var logits = net.Forward(x);
        Ops.Sum(logits).Backward();
        foreach (var (name, p) in net.NamedParameters())
        {
            bool frozen = name.StartsWith("conv1.") || name.StartsWith("bn1.") || name.StartsWith("layer1.") || name.StartsWith("layer2.");
            Assert.That(p.Grad is null, Is.EqualTo(frozen), name);
        }
    }

    [Test]
    public void FreezingThroughTheLastStageLeavesNothingToRecordInTheBackbone()
    {
        using var net = Net();
        net.Freeze((int)FreezeThrough.Layer3);
        using var scope = DisposeScope.Begin();
        var l3 = net.ForwardToLayer3(Tensor.RandN([1, 3, 32, 32], new Rng(7)));
        Assert.That((l3.RequiresGrad, l3.GradFn), Is.EqualTo((false, (GradNode?)null)));
    }

    [Test]
    public void FrozenBatchNormsKeepTheirStatisticsInTrainingMode()
    {
        using var net = Net();
        net.Freeze((int)FreezeThrough.Stem);
        net.Train();
        net.KeepFrozenInEval();
        var frozen = net.StateDict()["bn1.running_mean"].ToFloatArray();
        var trained = net.StateDict()["layer1.0.bn1.running_mean"].ToFloatArray();
        using (DisposeScope.Begin()) net.Forward(Ops.AddScalar(Tensor.RandN([2, 3, 32, 32], new Rng(8)), 3));
        Assert.That(net.StateDict()["bn1.running_mean"].ToFloatArray(), Is.EqualTo(frozen));
        Assert.That(net.StateDict()["layer1.0.bn1.running_mean"].ToFloatArray(), Is.Not.EqualTo(trained));
    }

    [Test]
    public void AnUnknownStageIsRefused()
    {
        using var net = Net();
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => net.Freeze(6))!.Message, Does.Contain("parts can be frozen"));
    }

    [Test]
    public void ALearningRateScaleAppliesToItsGroupOnly()
    {
        using var scope = DisposeScope.Begin();
        var a = Tensor.FromArray(new[] { 1f, 2f }).RequireGrad();
        var b = Tensor.FromArray(new[] { 1f, 2f }).RequireGrad();
        using var sgd = new SGD([a, b], lr: 0.5, momentum: 0.9, weightDecay: 0.1);
        sgd.ScaleLearningRate([b], 0.1);
        for (int step = 0; step < 3; step++)
        {
            sgd.ZeroGrad();
            Ops.Sum(Ops.Add(Ops.Mul(a, a), Ops.Mul(b, b))).Backward();
            sgd.Step();
        }
        // Reference: the same three SGD steps at lr 0.5 and at lr 0.05 on f(p) = Σ p².
        static float[] Reference(double lr)
        {
            double[] p = [1, 2], buf = [0, 0];
            for (int s = 0; s < 3; s++)
                for (int i = 0; i < 2; i++)
                {
                    double d = 2 * p[i] + 0.1 * p[i];
                    buf[i] = s == 0 ? d : 0.9 * buf[i] + d;
                    p[i] -= lr * buf[i];
                }
            return p.Select(v => (float)v).ToArray();
        }
        Assert.That(a.ToFloatArray(), Is.EqualTo(Reference(0.5)).Within(1e-6));
        Assert.That(b.ToFloatArray(), Is.EqualTo(Reference(0.05)).Within(1e-6));
    }
}
