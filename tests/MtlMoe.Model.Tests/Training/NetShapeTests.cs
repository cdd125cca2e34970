using MtlMoe.Engine;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;

namespace MtlMoe.Tests.Training;

/// <summary>Forward/backward shapes of every variant and backbone.</summary>
public class NetShapeTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var backbone in new[] { "resnet18", "resnet34", "resnet50" })
            foreach (var variant in new[] { "single", "moe", "mtl", "mtl-moe" })
                yield return new TestCaseData(variant, backbone, "head").SetName($"Shapes_{variant}_{backbone}_head");
        yield return new TestCaseData("mtl-moe", "resnet18", "layer4").SetName("Shapes_mtl-moe_resnet18_layer4");
        yield return new TestCaseData("single", "resnet50", "layer4").SetName("Shapes_single_resnet50_layer4");
    }

    [TestCaseSource(nameof(Cases))]
    public void ForwardAndBackwardShapes(string variant, string backbone, string expertDepth)
    {
        const int res = 32;
        var config = TrainingFixtures.TinyConfig(variant, backbone, expertDepth, classes: 5) with { Width = 0.0625, Resolution = res };
        using var net = new MtlMoeNet(config, seed: 2);
        using var scope = DisposeScope.Begin();
        var x = Tensor.RandN([3, 3, res, res], rng: new Rng(1));
        var labels = Tensor.FromArray(new long[] { 0, 4, 2 });
        var boxes = Tensor.FromArray(new float[] { 0.1f, 0.1f, 0.6f, 0.7f, 0.2f, 0.3f, 0.9f, 0.8f, 0f, 0f, 1f, 1f }, [3, 4]);
        var o = net.Run(x);
        Assert.That(o.Logits.Shape, Is.EqualTo(new[] { 3, 5 }));
        Assert.That(o.Boxes?.Shape, config.HasBox ? Is.EqualTo(new[] { 3, 4 }) : Is.Null);
        Assert.That(o.AuxLoss is not null, Is.EqualTo(config.HasMoe));
        Assert.That(o.K, Is.EqualTo(config.EffectiveK));
        Assert.That(o.ExpertIndices, Has.Length.EqualTo(3 * o.K));
        Assert.That(o.Gates.Chunk(o.K).Select(g => g.Sum()), Is.All.EqualTo(1.0).Within(1e-5));

        var loss = MultiTaskLoss.Compute(net, o, labels, boxes, new LossOptions());
        Assert.That(double.IsFinite(loss.Value));
        loss.Total.Backward();
        var named = net.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
        Assert.That(named["backbone.conv1.weight"].Grad?.Shape, Is.EqualTo(named["backbone.conv1.weight"].Shape));
        if (config.HasBox) Assert.That(named["loc.fc2.weight"].Grad, Is.Not.Null);
        if (config.HasMoe) Assert.That(named["moe.gate.w_gate"].Grad, Is.Not.Null);
        else Assert.That(named.Keys.Where(k => k.StartsWith("head.")).Select(k => named[k].Grad), Is.All.Not.Null);
    }

    [Test]
    public void Layer4ExpertsTrainOnASingleRoutedRowWithAOneByOneMap()
    {
        // 32 px: the layer3 map is 2×2 and each expert's layer4 map 1×1; one image routed to k = 2 experts gives
        // each a single row — one value per channel in its batch-norms, which have no batch statistics then.
        var config = TrainingFixtures.TinyConfig("moe", "resnet18", "layer4", classes: 5) with { Width = 0.0625, Resolution = 32 };
        using var net = new MtlMoeNet(config, seed: 3);
        using var scope = DisposeScope.Begin();
        var running = net.NamedBuffers().Where(b => b.Name.Contains("experts.") && b.Name.EndsWith("running_mean", StringComparison.Ordinal))
            .ToDictionary(b => b.Name, b => b.Tensor.ToArray<float>());
        var o = net.Run(Tensor.RandN([1, 3, 32, 32], rng: new Rng(5)));
        Assert.That(o.RoutedRows.Count(r => r == 1), Is.EqualTo(2));
        Assert.That(o.Logits.ToArray<float>(), Is.All.Matches<float>(float.IsFinite));

        var loss = MultiTaskLoss.Compute(net, o, Tensor.FromArray(new long[] { 3 }), Tensor.FromArray(new float[] { 0.1f, 0.1f, 0.6f, 0.7f }, [1, 4]), new LossOptions());
        loss.Total.Backward();
        var used = o.ExpertIndices.Distinct().ToArray();
        var named = net.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
        foreach (int e in used)
        {
            var g = named[$"moe.experts.{e}.layer4.1.bn2.weight"].Grad;
            Assert.That(g, Is.Not.Null, $"expert {e}'s last batch-norm got no gradient");
            Assert.That(g!.ToArray<float>().Any(v => v != 0), Is.True, $"expert {e}'s last batch-norm gradient is all zero");
        }
        // The running statistics cannot learn from a single value; they stay as they were, and training mode is kept.
        foreach (var (name, before) in running)
            Assert.That(net.NamedBuffers().Single(b => b.Name == name).Tensor.ToArray<float>(), Is.EqualTo(before), name);
        Assert.That(net.ExpertModules.All(m => m.Training), Is.True);
    }

    [TestCase("resnet18", "bn2")]
    [TestCase("resnet50", "bn3")]
    public void ZeroInitResidualZeroesOnlyTheLastNormOfEachBlock(string backbone, string lastNorm)
    {
        var config = TrainingFixtures.TinyConfig("mtl-moe", backbone) with { Width = 0.0625, ZeroInitResidual = true };
        using var net = new MtlMoeNet(config, seed: 2);
        var gammas = net.NamedParameters().Where(p => p.Name.StartsWith("backbone.", StringComparison.Ordinal) && p.Name.EndsWith(".weight", StringComparison.Ordinal) && p.Name.Contains(".bn"))
            .ToDictionary(p => p.Name, p => p.Tensor.ToArray<float>());
        var zeroed = gammas.Where(kv => kv.Value.All(v => v == 0)).Select(kv => kv.Key).ToList();
        int blocks = backbone == "resnet18" ? 8 : 16;
        Assert.That(zeroed, Has.Count.EqualTo(blocks));
        Assert.That(zeroed, Is.All.Match($@"^backbone\.layer\d\.\d+\.{lastNorm}\.weight$"));
        Assert.That(gammas.Where(kv => !zeroed.Contains(kv.Key)).SelectMany(kv => kv.Value), Is.All.EqualTo(1f));
        using var plain = new MtlMoeNet(config with { ZeroInitResidual = false }, seed: 2);
        Assert.That(plain.NamedParameters().Where(p => p.Name.EndsWith($"{lastNorm}.weight", StringComparison.Ordinal)).SelectMany(p => p.Tensor.ToArray<float>()), Is.All.EqualTo(1f));
    }

    [Test]
    public void ParameterNamesFollowTorchvisionUnderBackbone()
    {
        using var net = new MtlMoeNet(TrainingFixtures.TinyConfig(), seed: 1);
        var names = net.StateDict().Keys.ToList();
        Assert.That(names, Does.Contain("backbone.conv1.weight").And.Contain("backbone.bn1.running_mean")
            .And.Contain("backbone.layer1.0.conv1.weight").And.Contain("moe.gate.w_gate").And.Contain("moe.experts.2.fc2.bias")
            .And.Contain("loc.fc2.weight"));
        Assert.That(names.Any(n => n.StartsWith("backbone.fc.")), Is.False);
    }

    [Test]
    public void ConfigRoundTripsThroughJson()
    {
        var c = TrainingFixtures.TinyConfig("mtl", "resnet34", "layer4") with { LearnedWeighting = true };
        Assert.That(ModelConfig.FromJson(c.ToJson()), Is.EqualTo(c));
    }

    [Test]
    public void LearnedWeightingRegistersLogVariancesThatGetGradients()
    {
        using var net = new MtlMoeNet(TrainingFixtures.TinyConfig() with { LearnedWeighting = true }, seed: 1);
        using var scope = DisposeScope.Begin();
        var o = net.Run(Tensor.RandN([2, 3, 32, 32], rng: new Rng(4)));
        var loss = MultiTaskLoss.Compute(net, o, Tensor.FromArray(new long[] { 1, 2 }), Tensor.FromArray(new float[] { 0.1f, 0.1f, 0.5f, 0.5f, 0.2f, 0.2f, 0.9f, 0.9f }, [2, 4]), new LossOptions());
        // At s = 0 the weighted loss equals CE + box + aux.
        Assert.That(loss.Value, Is.EqualTo(loss.Class + loss.Box + loss.Aux).Within(1e-4));
        loss.Total.Backward();
        Assert.That(net.TaskWeights!.SCls.Grad, Is.Not.Null);
        Assert.That(net.TaskWeights.SBox.Grad, Is.Not.Null);
    }
}
