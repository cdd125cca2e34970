using System.Text;
using MtlMoe.Engine.IO;

namespace MtlMoe.Tests.NnOptim;

/// <summary>Each malformed file is rejected before any tensor is allocated, with a message naming the file and the problem.</summary>
// Serial: every case compares the process-wide live-tensor counters (MemoryStats), which parallel tests move.
[NonParallelizable]
public class SafetensorsMalformedTests
{
    private string _path = "";

    [SetUp] public void MakePath() => _path = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.safetensors");
    [TearDown] public void RemoveFile() => File.Delete(_path);

    private static byte[] Build(string json, int dataBytes, ulong? headerLength = null)
    {
        var h = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + h.Length + dataBytes];
        BitConverter.GetBytes(headerLength ?? (ulong)h.Length).CopyTo(bytes, 0);
        h.CopyTo(bytes, 8);
        return bytes;
    }

    private void AssertRejected(byte[] file, string expected)
    {
        File.WriteAllBytes(_path, file);
        long before = MtlMoe.Engine.MemoryStats.LiveTensors;
        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Load(_path));
        Assert.That(ex!.Message, Does.Contain(_path).And.Contain(expected));
        Assert.That(MtlMoe.Engine.MemoryStats.LiveTensors, Is.EqualTo(before), "nothing allocated");
    }

    private static string T(string name, string dtype, string shape, string offsets) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":{offsets}}}";

    [Test] public void ShorterThanEightBytes() => AssertRejected([1, 2, 3, 4, 5], "shorter than the 8-byte header length");
    [Test] public void HeaderLengthPastEndOfFile() => AssertRejected(Build("{}", 0, headerLength: 100), "header length 100 runs past the end of the file (10 bytes)");
    [Test] public void AbsurdHeaderLength() => AssertRejected(Build("{}", 0, headerLength: 1UL << 40), "exceeds the 100000000-byte limit");
    [Test] public void InvalidJson() => AssertRejected(Build("{\"a\": ", 0), "header is not valid JSON");
    [Test] public void HeaderNotAnObject() => AssertRejected(Build("[1, 2]", 0), "header is a JSON Array, not an object");
    [Test] public void EntryNotAnObject() => AssertRejected(Build("{\"a\": 3}", 0), "tensor 'a' is a JSON Number");

    [TestCase("dtype")]
    [TestCase("shape")]
    [TestCase("data_offsets")]
    public void MissingField(string field)
    {
        var parts = new Dictionary<string, string> { ["dtype"] = "\"F32\"", ["shape"] = "[2]", ["data_offsets"] = "[0,8]" };
        parts.Remove(field);
        var json = "{\"w\":{" + string.Join(",", parts.Select(kv => $"\"{kv.Key}\":{kv.Value}")) + "}}";
        AssertRejected(Build(json, 8), $"tensor 'w': missing field '{field}'");
    }

    [Test] public void UnknownDType() => AssertRejected(Build("{" + T("w", "C64", "[2]", "[0,16]") + "}", 16), "tensor 'w': unsupported dtype 'C64' (supported: F32, F64, I32, I64, BF16, F16)");
    [Test] public void NegativeShapeDim() => AssertRejected(Build("{" + T("w", "F32", "[-2]", "[0,8]") + "}", 8), "shape dim 0 (-2) is not a non-negative");
    [Test] public void NonIntegerShapeDim() => AssertRejected(Build("{" + T("w", "F32", "[2, 1.5]", "[0,8]") + "}", 8), "shape dim 1 (1.5) is not a non-negative");
    [Test] public void NonIntegerOffset() => AssertRejected(Build("{" + T("w", "F32", "[2]", "[0,\"8\"]") + "}", 8), "data offset \"8\" is not a non-negative integer");
    [Test] public void OffsetsNotAPair() => AssertRejected(Build("{" + T("w", "F32", "[2]", "[0]") + "}", 8), "'data_offsets' must be an array [begin, end]");
    [Test] public void OffsetsOutOfRange() => AssertRejected(Build("{" + T("w", "F32", "[4]", "[0,16]") + "}", 8), "data_offsets [0, 16] lie outside the 8-byte data region");
    [Test] public void EndBeforeBegin() => AssertRejected(Build("{" + T("w", "F32", "[0]", "[8,0]") + "}", 8), "data_offsets end 0 < begin 8");
    [Test] public void ByteCountDoesNotMatchShape() => AssertRejected(Build("{" + T("w", "F32", "[3]", "[0,8]") + "}", 8), "cover 8 bytes but F32 [3] needs 12");
    [Test] public void OverlappingTensors() => AssertRejected(Build("{" + T("a", "F32", "[2]", "[0,8]") + "," + T("b", "F32", "[2]", "[4,12]") + "}", 12), "tensor 'b' [4, 12] overlaps tensor 'a'");
    [Test] public void HoleInDataRegion() => AssertRejected(Build("{" + T("a", "F32", "[2]", "[0,8]") + "," + T("b", "F32", "[2]", "[12,20]") + "}", 20), "hole of 4 bytes at offset 8");
    [Test] public void TrailingBytes() => AssertRejected(Build("{" + T("a", "F32", "[2]", "[0,8]") + "}", 12), "4 trailing bytes");
    [Test] public void MetadataValueNotString() => AssertRejected(Build("{\"__metadata__\":{\"epoch\":3}}", 0), "metadata 'epoch' is a Number, not a string");
    [Test] public void DuplicateName() => AssertRejected(Build("{" + T("a", "F32", "[1]", "[0,4]") + "," + T("a", "F32", "[1]", "[4,8]") + "}", 8), "name 'a' appears twice");
}
