using MtlMoe.Engine;
using MtlMoe.Engine.IO.Onnx;
using static MtlMoe.Tests.IO.OnnxBuilder;

namespace MtlMoe.Tests.IO;

/// <summary>The ONNX reader: every field a CNN importer needs, and one clear error naming the file for what it cannot honour.</summary>
public class OnnxReaderTests
{
    private string _path = "";

    [SetUp] public void MakePath() => _path = Path.Combine(Path.GetTempPath(), $"model-{Guid.NewGuid():N}.onnx");
    [TearDown] public void RemoveFile() => File.Delete(_path);

    private static readonly float[] Weights = [0.5f, -1.25f, 3f, 1e-3f, -7f, 2.5f];

    /// <summary>Conv(x, w) → Relu, w in float_data, a bias in raw float16, an int64 shape in int64_data, a raw int32 tensor.</summary>
    private static byte[] SmallModel(params byte[][] extraInitializers)
    {
        byte[] half = [.. BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)1.5)), .. BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)(-0.25)))];
        byte[][] inits =
        [
            FloatTensor("w", [1, 1, 2, 3], Weights),
            RawTensor("b", [2], 10, half),
            [.. PackedVarints(1, [2]), .. VarintField(2, 7), .. Str(8, "shape"), .. PackedVarints(7, [-1, 6])],
            RawTensor("idx", [3], 6, [.. BitConverter.GetBytes(7), .. BitConverter.GetBytes(-2), .. BitConverter.GetBytes(40)]),
            .. extraInitializers,
        ];
        byte[][] nodes =
        [
            Node("Conv", "conv0", ["x", "w"], ["c"], IntsAttribute("pads", 3, 3, 2, 2), IntsAttribute("strides", 2, 2), IntAttribute("group", 1)),
            Node("BatchNormalization", "bn0", ["c", "s", "b", "m", "v"], ["n"], FloatAttribute("epsilon", 1e-5f)),
            Node("Relu", "relu0", ["n"], ["y"]),
        ];
        return Model(nodes, inits, [FloatValueInfo("x", 1, 1, 4, 6)], [FloatValueInfo("y", 1, 1, 2, 2)]);
    }

    [Test]
    public void ReadsNodesAttributesInitializersAndShapes()
    {
        File.WriteAllBytes(_path, SmallModel());
        var m = OnnxReader.Load(_path);
        Assert.That((m.IrVersion, m.ProducerName, m.Opsets[""]), Is.EqualTo((7L, "tests", 13L)));
        var g = m.Graph;
        Assert.That(g.Nodes.Select(n => n.OpType), Is.EqualTo(new[] { "Conv", "BatchNormalization", "Relu" }));
        var conv = g.Nodes[0];
        Assert.That(conv.Inputs, Is.EqualTo(new[] { "x", "w" }));
        Assert.That(conv.Ints("pads", []), Is.EqualTo(new long[] { 3, 3, 2, 2 }));
        Assert.That(conv.Ints("strides", []), Is.EqualTo(new long[] { 2, 2 }));
        Assert.That(conv.Int("group", 0), Is.EqualTo(1));
        Assert.That(g.Nodes[1].Float("epsilon", 0), Is.EqualTo(1e-5f));
        Assert.That(g.Inputs.Single().Dims, Is.EqualTo(new long?[] { 1, 1, 4, 6 }));
        Assert.That(g.Outputs.Single().Name, Is.EqualTo("y"));

        var w = g.Initializers["w"];
        Assert.That((w.Dims, w.DType, w.Floats), Is.EqualTo((new long[] { 1, 1, 2, 3 }, DType.Float32, Weights)));
        var b = g.Initializers["b"];
        Assert.That((b.SourceType, b.Floats), Is.EqualTo((OnnxDataType.Float16, new[] { 1.5f, -0.25f })));
        Assert.That(g.Initializers["shape"].Longs, Is.EqualTo(new long[] { -1, 6 }));
        Assert.That(g.Initializers["idx"].Data, Is.EqualTo(new[] { 7, -2, 40 }));
        using var t = w.ToTensor();
        Assert.That((t.Shape, t.ToFloatArray()), Is.EqualTo((new[] { 1, 1, 2, 3 }, Weights)));
    }

    [Test]
    public void UnpackedRepeatedFieldsReadLikePackedOnes()
    {
        // protobuf lets a writer put one value per tag; a reader must take both forms.
        byte[] tensor = [.. VarintField(1, 2), .. VarintField(1, 1), .. VarintField(2, 1), .. Float(4, 2f), .. Float(4, -3f), .. Str(8, "u")];
        File.WriteAllBytes(_path, Model([], [tensor], [], []));
        var u = OnnxReader.Load(_path).Graph.Initializers["u"];
        Assert.That((u.Dims, u.Floats), Is.EqualTo((new long[] { 2, 1 }, new[] { 2f, -3f })));
    }

    private void AssertRejected(byte[] file, params string[] expected)
    {
        File.WriteAllBytes(_path, file);
        var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Load(_path));
        Assert.That(ex!.Message, Does.StartWith($"onnx file '{_path}': "));
        foreach (var e in expected) Assert.That(ex.Message, Does.Contain(e));
    }

    [Test]
    public void EveryTruncationIsOneClearError()
    {
        var whole = SmallModel();
        // Cutting anywhere inside the graph leaves a length that runs past the end (or a half varint).
        foreach (int cut in new[] { 1, whole.Length / 3, whole.Length / 2, whole.Length - 20 })
        {
            File.WriteAllBytes(_path, whole[..cut]);
            var ex = Assert.Throws<OnnxFormatException>(() => OnnxReader.Load(_path), $"cut at {cut}");
            Assert.That(ex!.Message, Does.StartWith($"onnx file '{_path}': ").And.Match("truncated|runs past the end|has no graph"), $"cut at {cut}");
        }
    }

    [Test] public void RandomBytesAreNotAModel() => AssertRejected([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], "varint longer than ten bytes", "at byte 0");
    [Test] public void EmptyFileHasNoGraph() => AssertRejected([], "the model has no graph");

    [Test]
    public void RawDataOfTheWrongSizeNamesTheTensor() =>
        AssertRejected(SmallModel(RawTensor("bad", [2, 2], 1, new byte[12])), "tensor 'bad' (Float, shape [2, 2]): raw_data holds 12 bytes, the shape needs 16");

    [Test]
    public void TypedDataOfTheWrongCountNamesTheTensor() =>
        AssertRejected(SmallModel(FloatTensor("few", [3], [1f, 2f])), "tensor 'few' (Float, shape [3]): float_data holds 2 values, the shape needs 3");

    [Test]
    public void StringTensorsAreRefused() =>
        AssertRejected(SmallModel(RawTensor("names", [1], 8, [0])), "tensor 'names'", "element type String is not supported");

    [Test]
    public void ExternalDataIsRefused() =>
        AssertRejected(SmallModel(FloatTensor("ext", [1], [1f], VarintField(14, 1))), "tensor 'ext': external data", "is not supported");

    [Test]
    public void SubgraphAttributesAreRefused()
    {
        byte[] graphAttr = [.. Str(1, "then_branch"), .. VarintField(20, 5), .. Message(6, Str(2, "sub"))];
        var file = Model([Node("If", "branch", ["cond"], ["out"], graphAttr)], [], [], []);
        AssertRejected(file, "node 'branch' (If): attribute 'then_branch' of type GRAPH is not supported");
    }

    [Test]
    public void SparseInitializersAreRefused()
    {
        byte[] graph = [.. Str(2, "g"), .. Message(15, Message(1, Str(8, "s")))];
        AssertRejected([.. VarintField(1, 7), .. Bytes(7, graph)], "GraphProto.sparse_initializer", "is not supported");
    }

    [Test]
    public void GroupsAndWrongWireTypesAreRefused()
    {
        AssertRejected([.. VarintField(1, 7), .. Varint(7 << 3 | 3)], "uses protobuf groups");
        AssertRejected([.. Str(1, "not a varint")], "ModelProto.ir_version field has wire type LengthDelimited, expected Varint");
    }
}
