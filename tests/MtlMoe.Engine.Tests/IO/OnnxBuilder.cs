using System.Text;

namespace MtlMoe.Tests.IO;

/// <summary>
/// Writes ONNX protobuf messages for tests (field numbers from onnx.proto): enough to make small models with
/// chosen initializers, nodes and attributes, and to break them on purpose. Each method returns one field
/// (tag + payload), so a message is the concatenation of its fields.
/// </summary>
public static class OnnxBuilder
{
    /// <summary>A base-128 varint.</summary>
    public static byte[] Varint(ulong v)
    {
        var b = new List<byte>();
        do { byte x = (byte)(v & 0x7F); v >>= 7; if (v != 0) x |= 0x80; b.Add(x); } while (v != 0);
        return b.ToArray();
    }

    private static byte[] Tag(int field, int wire) => Varint((ulong)(field << 3 | wire));

    /// <summary>A varint field.</summary>
    public static byte[] VarintField(int field, long v) => [.. Tag(field, 0), .. Varint((ulong)v)];

    /// <summary>A length-delimited field holding <paramref name="payload"/>.</summary>
    public static byte[] Bytes(int field, byte[] payload) => [.. Tag(field, 2), .. Varint((ulong)payload.Length), .. payload];

    /// <summary>A string field.</summary>
    public static byte[] Str(int field, string s) => Bytes(field, Encoding.UTF8.GetBytes(s));

    /// <summary>A fixed32 float field.</summary>
    public static byte[] Float(int field, float f) => [.. Tag(field, 5), .. BitConverter.GetBytes(f)];

    /// <summary>A message field made of <paramref name="fields"/>.</summary>
    public static byte[] Message(int field, params byte[][] fields) => Bytes(field, fields.SelectMany(f => f).ToArray());

    /// <summary>Packed floats.</summary>
    public static byte[] PackedFloats(int field, float[] values) => Bytes(field, values.SelectMany(BitConverter.GetBytes).ToArray());

    /// <summary>Packed varints.</summary>
    public static byte[] PackedVarints(int field, IEnumerable<long> values) => Bytes(field, values.SelectMany(v => Varint((ulong)v)).ToArray());

    /// <summary>A TensorProto's fields with float_data (packed); extra fields are appended.</summary>
    public static byte[] FloatTensor(string name, long[] dims, float[] values, params byte[][] extra) =>
        [.. PackedVarints(1, dims), .. VarintField(2, 1), .. PackedFloats(4, values), .. Str(8, name), .. extra.SelectMany(e => e)];

    /// <summary>A TensorProto's fields with raw_data of the given element type code.</summary>
    public static byte[] RawTensor(string name, long[] dims, int dataType, byte[] raw) =>
        [.. PackedVarints(1, dims), .. VarintField(2, dataType), .. Str(8, name), .. Bytes(9, raw)];

    /// <summary>An AttributeProto with an ints value.</summary>
    public static byte[] IntsAttribute(string name, params long[] ints) => [.. Str(1, name), .. VarintField(20, 7), .. PackedVarints(8, ints)];

    /// <summary>An AttributeProto with an int value.</summary>
    public static byte[] IntAttribute(string name, long v) => [.. Str(1, name), .. VarintField(20, 2), .. VarintField(3, v)];

    /// <summary>An AttributeProto with a float value.</summary>
    public static byte[] FloatAttribute(string name, float v) => [.. Str(1, name), .. VarintField(20, 1), .. Float(2, v)];

    /// <summary>A NodeProto's fields.</summary>
    public static byte[] Node(string op, string name, string[] inputs, string[] outputs, params byte[][] attributes)
    {
        var f = new List<byte>();
        foreach (var i in inputs) f.AddRange(Str(1, i));
        foreach (var o in outputs) f.AddRange(Str(2, o));
        f.AddRange(Str(3, name));
        f.AddRange(Str(4, op));
        foreach (var a in attributes) f.AddRange(Bytes(5, a));
        return f.ToArray();
    }

    /// <summary>A ValueInfoProto for a float tensor of fixed dims.</summary>
    public static byte[] FloatValueInfo(string name, params long[] dims)
    {
        byte[] shape = dims.SelectMany(d => Message(1, VarintField(1, d))).ToArray();
        byte[] tensorType = [.. VarintField(1, 1), .. Bytes(2, shape)];
        return [.. Str(1, name), .. Message(2, Bytes(1, tensorType))];
    }

    /// <summary>
    /// A ModelProto: IR 7, opset 13, producer "tests", a graph with these node, initializer (TensorProto fields),
    /// input and output (ValueInfoProto fields) messages.
    /// </summary>
    public static byte[] Model(byte[][] nodes, byte[][] initializers, byte[][] inputs, byte[][] outputs)
    {
        var g = new List<byte>();
        foreach (var n in nodes) g.AddRange(Bytes(1, n));
        g.AddRange(Str(2, "graph"));
        foreach (var t in initializers) g.AddRange(Bytes(5, t));
        foreach (var i in inputs) g.AddRange(Bytes(11, i));
        foreach (var o in outputs) g.AddRange(Bytes(12, o));
        return [.. VarintField(1, 7), .. Str(2, "tests"), .. Str(3, "1.0"), .. Bytes(7, g.ToArray()), .. Message(8, Str(1, ""), VarintField(2, 13))];
    }
}
