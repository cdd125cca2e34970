using MtlMoe.Engine;
using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.IO.Torch;
using MtlMoe.Model.Backbone;
using static MtlMoe.Tests.Pretrained.TorchFiles;

namespace MtlMoe.Tests.Pretrained;

/// <summary>
/// torchvision-named state dicts written by PyTorch (tools/torch-fixtures/make_fixtures.py) load into our ResNets by
/// name, and give PyTorch's outputs and parameter gradients for the same inputs.
/// </summary>
public class TorchParityTests
{
    private static ResNet LoadInto(ResNetDepth depth, int classes, string pth)
    {
        var net = new ResNet(depth, classes, widthMultiplier: 0.0625, rng: new Rng(1));
        var state = TorchCheckpoint.Load(Fixture(pth));
        try
        {
            var report = net.LoadStateDict(state, strict: true);  // every torchvision name, every shape
            Assert.That(report.Matched, Has.Count.EqualTo(state.Count));
        }
        finally { foreach (var t in state.Values) t.Dispose(); }
        return net;
    }

    [Test]
    public void ResNet18OutputsAndGradientsMatchPyTorch()
    {
        var reference = Reference("resnet18_narrow_ref.safetensors");
        try
        {
            using var net = LoadInto(ResNetDepth.ResNet18, 5, "resnet18_narrow.pth");
            using var scope = DisposeScope.Begin();
            var x = reference["x"];
            net.Eval();
            var logits = net.Forward(x);                                           // [2, 5]
            Assert.That(RelativeError(logits.ToFloatArray(), reference["logits_eval"].ToFloatArray()), Is.LessThan(1e-5), "eval logits");

            var loss = Ops.Sum(Ops.Mul(logits, reference["r"]));
            loss.Backward();
            int compared = 0;
            foreach (var (name, p) in net.NamedParameters())
            {
                double err = RelativeError(p.Grad!.ToFloatArray(), reference["grad." + name].ToFloatArray());
                Assert.That(err, Is.LessThan(1e-4), $"gradient of {name}");
                compared++;
            }
            Assert.That(compared, Is.EqualTo(reference.Keys.Count(k => k.StartsWith("grad.", StringComparison.Ordinal))));

            net.Train();
            using var noGrad = GradMode.NoGrad();
            var train = net.Forward(x);                                            // batch statistics
            Assert.That(RelativeError(train.ToFloatArray(), reference["logits_train"].ToFloatArray()), Is.LessThan(1e-4), "train-mode logits");
        }
        finally { foreach (var t in reference.Values) t.Dispose(); }
    }

    [Test]
    public void ResNet50BottleneckNamesAndFloat16WeightsMatchPyTorch()
    {
        var reference = Reference("resnet50_narrow_ref.safetensors");
        try
        {
            using var net = LoadInto(ResNetDepth.ResNet50, 7, "resnet50_narrow.pth");
            net.Eval();
            using var scope = DisposeScope.Begin();
            using var noGrad = GradMode.NoGrad();
            var logits = net.Forward(reference["x"]);
            Assert.That(RelativeError(logits.ToFloatArray(), reference["logits_eval"].ToFloatArray()), Is.LessThan(1e-5));
        }
        finally { foreach (var t in reference.Values) t.Dispose(); }
    }

    /// <summary>Full-size torchvision resnet18/resnet50 state dicts (random weights) and references, written once per run.</summary>
    private static readonly Lazy<string> FullSizeFiles = new(() =>
    {
        string dir = NewTempDir();
        string script = Path.GetFullPath(Path.Combine(TestContext.CurrentContext.TestDirectory, "../../../../../tools/torch-fixtures/make_fixtures.py"));
        if (!File.Exists(script)) throw new FileNotFoundException($"the fixture script {script} is not beside the tests");
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3", [script, "--full", dir]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"make_fixtures.py --full failed: {err}");
        return dir;
    });

    [TestCase("resnet18", ResNetDepth.ResNet18)]
    [TestCase("resnet50", ResNetDepth.ResNet50)]
    public void FullSizeTorchvisionNetworksMatchWherePyTorchIsInstalled(string name, ResNetDepth depth)
    {
        if (PythonTorchMissing.Value is { } why) Assert.Ignore($"needs PyTorch: {why}");
        string dir = FullSizeFiles.Value;
        using var net = new ResNet(depth, 1000, rng: new Rng(2));
        var state = TorchCheckpoint.Load(Path.Combine(dir, name + ".pth"));
        try { Assert.That(net.LoadStateDict(state, strict: true).Matched, Has.Count.EqualTo(state.Count)); }
        finally { foreach (var t in state.Values) t.Dispose(); }
        var reference = DisposeScope.Outside(() => MtlMoe.Engine.IO.Safetensors.Load(Path.Combine(dir, name + "_ref.safetensors")));
        try
        {
            net.Eval();
            using var scope = DisposeScope.Begin();
            using var noGrad = GradMode.NoGrad();
            var logits = net.Forward(reference["x"]);
            Assert.That(RelativeError(logits.ToFloatArray(), reference["logits_eval"].ToFloatArray()), Is.LessThan(1e-4));
        }
        finally
        {
            foreach (var t in reference.Values) t.Dispose();
        }
    }
}
