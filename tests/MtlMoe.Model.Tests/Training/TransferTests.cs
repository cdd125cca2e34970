using MtlMoe.Engine;
using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.IO;
using MtlMoe.Model.Backbone;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;

namespace MtlMoe.Tests.Training;

/// <summary>--pretrained (backbone by torchvision name) and --init-experts-from.</summary>
public class TransferTests
{
    /// <summary>A torchvision-shaped ResNet-18 (with fc) whose weights and BN statistics are all non-default.</summary>
    private static ResNet SourceBackbone()
    {
        var src = new ResNet(ResNetDepth.ResNet18, numClasses: 10, widthMultiplier: 0.125, rng: new Rng(77));
        var rng = new Rng(78);
        using var _ = GradMode.NoGrad();
        foreach (var (name, t) in src.NamedBuffers())
            if (name.EndsWith("running_mean") || name.EndsWith("running_var"))
                using (var r = Tensor.Rand(t.Shape, rng)) { using var v = Ops.AddScalar(r, 0.5); t.CopyFrom(v); }
        return src;
    }

    [Test]
    public void PretrainedBackboneRoundTripGivesIdenticalOutputs()
    {
        string dir = TrainingFixtures.NewTempDir();
        string file = Path.Combine(dir, "resnet18.safetensors");
        using var src = SourceBackbone();
        src.SaveSafetensors(file);

        using var net = new MtlMoeNet(TrainingFixtures.TinyConfig(), seed: 123);
        var report = Transfer.LoadPretrainedBackbone(net, file);
        Assert.That(report.Missing, Is.Empty);
        Assert.That(report.ShapeMismatched, Is.Empty);
        Assert.That(report.Unexpected, Is.EquivalentTo(new[] { "fc.weight", "fc.bias" }));
        Assert.That(report.Matched, Has.Count.EqualTo(net.Backbone.StateDict().Count));

        src.Eval(); net.Eval();
        using var scope = DisposeScope.Begin();
        using var noGrad = GradMode.NoGrad();
        var x = Tensor.RandN([2, 3, 32, 32], rng: new Rng(5));
        var expected = src.Pool(src.ForwardFeatureMap(x)).ToFloatArray();
        var actual = net.Backbone.Pool(net.Backbone.ForwardFeatureMap(x)).ToFloatArray();
        Assert.That(actual, Is.EqualTo(expected));
    }

    [Test]
    public void KeyReportNamesMissingUnexpectedAndShapeMismatchedKeys()
    {
        string dir = TrainingFixtures.NewTempDir();
        string file = Path.Combine(dir, "partial.safetensors");
        using var src = SourceBackbone();
        var state = src.StateDict();
        state.Remove("layer1.0.bn1.running_var");
        using var extra = DisposeScope.Outside(() => Tensor.Zeros([3]));
        state["head.extra"] = extra;
        using var wrong = DisposeScope.Outside(() => Tensor.Zeros([2, 2]));
        state["layer2.0.conv1.weight"] = wrong;
        Safetensors.Save(file, state);

        using var net = new MtlMoeNet(TrainingFixtures.TinyConfig("single"), seed: 1);
        var before = net.Backbone.StateDict()["layer2.0.conv1.weight"].ToFloatArray();
        var report = Transfer.LoadPretrainedBackbone(net, file);
        Assert.That(report.Missing, Is.EqualTo(new[] { "layer1.0.bn1.running_var" }));
        Assert.That(report.Unexpected, Is.EquivalentTo(new[] { "fc.weight", "fc.bias", "head.extra" }));
        Assert.That(report.ShapeMismatched, Has.Count.EqualTo(1).And.Some.StartsWith("layer2.0.conv1.weight: checkpoint [2, 2]"));
        Assert.That(net.Backbone.StateDict()["layer2.0.conv1.weight"].ToFloatArray(), Is.EqualTo(before), "a mismatched tensor must be left alone");
        var lines = Transfer.Describe(report).ToList();
        Assert.That(lines[0], Does.StartWith($"matched {report.Matched.Count}, missing 1, unexpected 3, shape-mismatched 1"));
        Assert.That(lines, Has.Some.Contains("head.extra").And.Some.Contains("layer1.0.bn1.running_var"));
    }

    [Test]
    public void InitExpertsFromCopiesTheSingleHeadIntoEveryExpert()
    {
        string dir = TrainingFixtures.NewTempDir();
        string ckpt = Path.Combine(dir, "single.safetensors");
        using (var single = new MtlMoeNet(TrainingFixtures.TinyConfig("single"), seed: 40))
            RunFiles.SaveModel(ckpt, single, ["a", "b", "c", "d"], 3);
        using var reference = RunFiles.LoadModel(ckpt).Net;
        var head = reference.StateDict().Where(kv => kv.Key.StartsWith("head.")).ToDictionary(kv => kv.Key[5..], kv => kv.Value.ToFloatArray());

        using var net = new MtlMoeNet(TrainingFixtures.TinyConfig("mtl-moe"), seed: 41);
        var report = Transfer.InitExpertsFrom(net, ckpt);
        Assert.That(report.IsExactMatch, Is.True, report.ToString());
        foreach (var expert in net.ExpertModules)
            foreach (var (name, t) in expert.StateDict())
                Assert.That(t.ToFloatArray(), Is.EqualTo(head[name]), name);
    }
}
