using MtlMoe.Engine.IO.Onnx;
using MtlMoe.Model.Backbone;
using static MtlMoe.Tests.IO.OnnxBuilder;

namespace MtlMoe.Tests.Pretrained;

/// <summary>The ONNX → torchvision-name mapping on small hand-made graphs, and its refusals.</summary>
public class OnnxResNetImportTests
{
    private string _path = "";

    [SetUp] public void MakePath() => _path = Path.Combine(Path.GetTempPath(), $"resnet-{Guid.NewGuid():N}.onnx");
    [TearDown] public void RemoveFile() => File.Delete(_path);

    private static float[] Values(int n, float start) => Enumerable.Range(0, n).Select(i => start + i * 0.001f).ToArray();

    /// <summary>
    /// A ResNet with one identity block (C → C) and one projection block (C → 2C, stride 2), CNTK-style pads.
    /// <paramref name="reluOp"/> replaces the stem's Relu op; <paramref name="stemBias"/> gives the stem conv a bias.
    /// </summary>
    private static byte[] MiniResNet(string reluOp = "Relu", bool stemBias = false, int c = 2)
    {
        var inits = new List<byte[]>();
        var nodes = new List<byte[]>();
        int k = 0;
        string Conv(string x, int cin, int cout, int kernel, int stride, long[] pads)
        {
            string w = $"P{k++}", y = $"conv{k}";
            inits.Add(FloatTensor(w, [cout, cin, kernel, kernel], Values(cout * cin * kernel * kernel, k)));
            nodes.Add(Node("Conv", $"Conv{k}", [x, w], [y], IntsAttribute("kernel_shape", kernel, kernel), IntsAttribute("strides", stride, stride), IntsAttribute("pads", pads)));
            return y;
        }
        string Bn(string x, int ch)
        {
            string[] p = [$"S{k}", $"B{k}", $"M{k}", $"V{k}"];
            for (int i = 0; i < 4; i++) inits.Add(FloatTensor(p[i], [ch], Values(ch, 10 * k + i + 1)));
            nodes.Add(Node("BatchNormalization", $"Bn{k}", [x, .. p], [$"bn{k}"], FloatAttribute("epsilon", 1e-5f)));
            return $"bn{k++}";
        }
        string Relu(string x, string op = "Relu") { nodes.Add(Node(op, $"Relu{k}", [x], [$"relu{k}"])); return $"relu{k++}"; }

        string s = Conv("image", 3, c, 7, 2, [3, 3, 2, 2]);
        if (stemBias) { inits.Add(FloatTensor("stem_bias", [c], Values(c, 0))); nodes[^1] = Node("Conv", "Stem", ["image", "P0", "stem_bias"], [s], IntsAttribute("kernel_shape", 7, 7), IntsAttribute("strides", 2, 2), IntsAttribute("pads", 3, 3, 2, 2)); }
        s = Relu(Bn(s, c), reluOp);
        nodes.Add(Node("MaxPool", "Pool", [s], ["pool"], IntsAttribute("kernel_shape", 3, 3), IntsAttribute("strides", 2, 2), IntsAttribute("pads", 1, 1, 0, 0)));
        string x = "pool";
        // identity block
        string m = Bn(Conv(Relu(Bn(Conv(x, c, c, 3, 1, [1, 1, 1, 1]), c)), c, c, 3, 1, [1, 1, 1, 1]), c);
        nodes.Add(Node("Add", "Add1", [m, x], ["add1"]));
        x = Relu("add1");
        // projection block
        string d = Bn(Conv(x, c, 2 * c, 1, 2, [0, 0, 0, 0]), 2 * c);
        m = Bn(Conv(Relu(Bn(Conv(x, c, 2 * c, 3, 2, [1, 1, 0, 0]), 2 * c)), 2 * c, 2 * c, 3, 1, [1, 1, 1, 1]), 2 * c);
        nodes.Add(Node("Add", "Add2", [m, d], ["add2"]));
        x = Relu("add2");
        nodes.Add(Node("GlobalAveragePool", "Gap", [x], ["features"]));
        return MtlMoe.Tests.IO.OnnxBuilder.Model(nodes.ToArray(), inits.ToArray(), [FloatValueInfo("image", 1, 3, 32, 32)], [FloatValueInfo("features", 1, 2 * c, 1, 1)]);
    }

    [Test]
    public void BlocksAndShortcutsGetTorchvisionNames()
    {
        File.WriteAllBytes(_path, MiniResNet());
        var r = OnnxResNetImport.Import(OnnxReader.Load(_path));
        try
        {
            Assert.That((r.StageBlocks, r.StageWidths, r.InputName, r.OutputName), Is.EqualTo((new[] { 1, 1 }, new[] { 2, 4 }, "image", "features")));
            string[] convs = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample.0"];
            string[] norms = ["bn1", "layer1.0.bn1", "layer1.0.bn2", "layer2.0.bn1", "layer2.0.bn2", "layer2.0.downsample.1"];
            var expected = convs.Select(n => n + ".weight")
                .Concat(norms.SelectMany(n => new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" }.Select(f => $"{n}.{f}")));
            Assert.That(r.Weights.Keys, Is.EquivalentTo(expected));
            // The 1×1 projection's conv was written before the main branch's: the walk, not the order, names it.
            Assert.That(r.Weights["layer2.0.downsample.0.weight"].Shape, Is.EqualTo(new[] { 4, 2, 1, 1 }));
            Assert.That(r.Weights["layer2.0.conv1.weight"].Shape, Is.EqualTo(new[] { 4, 2, 3, 3 }));
            Assert.That(r.Weights["conv1.weight"].ToFloatArray()[1], Is.EqualTo(1.001f));
        }
        finally { foreach (var t in r.Weights.Values) t.Dispose(); }
    }

    private void AssertRefused(byte[] model, string expected)
    {
        File.WriteAllBytes(_path, model);
        var e = Assert.Throws<OnnxFormatException>(() => OnnxResNetImport.Import(OnnxReader.Load(_path)));
        Assert.That(e!.Message, Does.StartWith($"onnx file '{_path}': ").And.Contain(expected));
    }

    [Test]
    public void AnUnsupportedOpIsNamed() =>
        AssertRefused(MiniResNet(reluOp: "Softmax"), "node 'Relu2' (Softmax) is not supported by the ResNet importer");

    [Test]
    public void AConvWithABiasIsRefused() =>
        AssertRefused(MiniResNet(stemBias: true), "node 'Stem' (Conv) has a bias");
}
