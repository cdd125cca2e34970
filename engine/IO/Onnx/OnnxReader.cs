using System.Buffers.Binary;

namespace MtlMoe.Engine.IO.Onnx;

/// <summary>
/// Reads the part of an ONNX model (onnx.proto: ModelProto → GraphProto → NodeProto, AttributeProto,
/// TensorProto, ValueInfoProto) that holds a network's nodes, attributes and weights, with a hand-written
/// protobuf wire-format reader (<see cref="ProtoReader"/>). Tensors may hold raw_data or the typed fields
/// (float_data, int32_data, int64_data, double_data). Fields of other messages are skipped, as protobuf
/// allows; what a weight importer cannot honour is refused with an <see cref="OnnxFormatException"/> naming
/// the file, the field and the byte: external or segmented tensor data, sparse initializers, local
/// functions, subgraph attributes, element types other than float32/16, bfloat16, float64, int32 and int64.
/// </summary>
public static class OnnxReader
{
    /// <summary>Files larger than this are refused before reading (a ModelProto is limited to 2 GiB anyway).</summary>
    public const long MaxFileBytes = int.MaxValue;

    /// <summary>Reads and decodes <paramref name="path"/>.</summary>
    public static OnnxModel Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"onnx file '{path}' not found", path);
        if (info.Length > MaxFileBytes) throw new OnnxFormatException($"onnx file '{path}': {info.Length} bytes exceeds the 2 GiB protobuf limit (external data is not supported)");
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Decodes a ModelProto's bytes; <paramref name="path"/> names the source in messages.</summary>
    public static OnnxModel Parse(ReadOnlySpan<byte> bytes, string path)
    {
        try { return ReadModel(new ProtoReader(bytes), path); }
        catch (ProtoException e) { throw new OnnxFormatException($"onnx file '{path}': {e.Message}"); }
    }

    private static ProtoException Unsupported(string what, long at) => new($"{what} is not supported", at);

    private static OnnxModel ReadModel(ProtoReader r, string path)
    {
        long ir = 0;
        string producer = "", producerVersion = "";
        var opsets = new Dictionary<string, long>();
        OnnxGraph? graph = null;
        while (r.More)
        {
            long at = r.Offset;
            var (field, type) = r.ReadTag();
            switch (field)
            {
                case 1: r.Expect(type, WireType.Varint, "ModelProto.ir_version"); ir = (long)r.ReadVarint(); break;
                case 2: r.Expect(type, WireType.LengthDelimited, "ModelProto.producer_name"); producer = r.ReadString(); break;
                case 3: r.Expect(type, WireType.LengthDelimited, "ModelProto.producer_version"); producerVersion = r.ReadString(); break;
                case 7: r.Expect(type, WireType.LengthDelimited, "ModelProto.graph"); graph = ReadGraph(r.ReadMessage()); break;
                case 8:
                {
                    r.Expect(type, WireType.LengthDelimited, "ModelProto.opset_import");
                    var (domain, version) = ReadOpset(r.ReadMessage());
                    opsets[domain] = version;
                    break;
                }
                case 25: throw Unsupported("ModelProto.functions (model-local functions)", at);
                default: r.Skip(type); break;
            }
        }
        if (graph is null) throw new OnnxFormatException($"onnx file '{path}': the model has no graph (ModelProto field 7); is this an ONNX model?");
        return new OnnxModel(path, ir, opsets, producer, producerVersion, graph);
    }

    private static (string Domain, long Version) ReadOpset(ProtoReader r)
    {
        string domain = "";
        long version = 0;
        while (r.More)
        {
            var (field, type) = r.ReadTag();
            if (field == 1 && type == WireType.LengthDelimited) domain = r.ReadString();
            else if (field == 2 && type == WireType.Varint) version = (long)r.ReadVarint();
            else r.Skip(type);
        }
        return (domain, version);
    }

    private static OnnxGraph ReadGraph(ProtoReader r)
    {
        string name = "";
        var nodes = new List<OnnxNode>();
        var inits = new Dictionary<string, OnnxTensor>(StringComparer.Ordinal);
        var inputs = new List<OnnxValueInfo>();
        var outputs = new List<OnnxValueInfo>();
        while (r.More)
        {
            long at = r.Offset;
            var (field, type) = r.ReadTag();
            switch (field)
            {
                case 1: r.Expect(type, WireType.LengthDelimited, "GraphProto.node"); nodes.Add(ReadNode(r.ReadMessage())); break;
                case 2: r.Expect(type, WireType.LengthDelimited, "GraphProto.name"); name = r.ReadString(); break;
                case 5:
                {
                    r.Expect(type, WireType.LengthDelimited, "GraphProto.initializer");
                    var t = ReadTensor(r.ReadMessage());
                    if (!inits.TryAdd(t.Name, t)) throw new ProtoException($"initializer '{t.Name}' appears twice", at);
                    break;
                }
                case 11: r.Expect(type, WireType.LengthDelimited, "GraphProto.input"); inputs.Add(ReadValueInfo(r.ReadMessage())); break;
                case 12: r.Expect(type, WireType.LengthDelimited, "GraphProto.output"); outputs.Add(ReadValueInfo(r.ReadMessage())); break;
                case 15: throw Unsupported("GraphProto.sparse_initializer (a sparse weight)", at);
                default: r.Skip(type); break;
            }
        }
        return new OnnxGraph(name, nodes, inits, inputs, outputs);
    }

    private static OnnxNode ReadNode(ProtoReader r)
    {
        long start = r.Start;
        var inputs = new List<string>();
        var outputs = new List<string>();
        string name = "", op = "", domain = "";
        var attrs = new List<(OnnxAttribute A, long At)>();
        while (r.More)
        {
            long at = r.Offset;
            var (field, type) = r.ReadTag();
            switch (field)
            {
                case 1: r.Expect(type, WireType.LengthDelimited, "NodeProto.input"); inputs.Add(r.ReadString()); break;
                case 2: r.Expect(type, WireType.LengthDelimited, "NodeProto.output"); outputs.Add(r.ReadString()); break;
                case 3: r.Expect(type, WireType.LengthDelimited, "NodeProto.name"); name = r.ReadString(); break;
                case 4: r.Expect(type, WireType.LengthDelimited, "NodeProto.op_type"); op = r.ReadString(); break;
                case 5: r.Expect(type, WireType.LengthDelimited, "NodeProto.attribute"); attrs.Add((ReadAttribute(r.ReadMessage()), at)); break;
                case 7: r.Expect(type, WireType.LengthDelimited, "NodeProto.domain"); domain = r.ReadString(); break;
                default: r.Skip(type); break;
            }
        }
        if (op.Length == 0) throw new ProtoException($"node '{name}' has no op_type", start);
        var byName = new Dictionary<string, OnnxAttribute>(StringComparer.Ordinal);
        foreach (var (a, at) in attrs)
        {
            if (a.Type is OnnxAttributeType.Graph or OnnxAttributeType.Graphs or OnnxAttributeType.SparseTensor or OnnxAttributeType.SparseTensors
                or OnnxAttributeType.TypeProto or OnnxAttributeType.TypeProtos)
                throw Unsupported($"node '{name}' ({op}): attribute '{a.Name}' of type {a.Type.ToString().ToUpperInvariant()}", at);
            if (!byName.TryAdd(a.Name, a)) throw new ProtoException($"node '{name}' ({op}): attribute '{a.Name}' appears twice", at);
        }
        return new OnnxNode(name, op, domain, inputs.ToArray(), outputs.ToArray(), byName);
    }

    private static OnnxAttribute ReadAttribute(ProtoReader r)
    {
        string name = "", s = "";
        var type = OnnxAttributeType.Undefined;
        float f = 0;
        long i = 0;
        var floats = new List<float>();
        var ints = new List<long>();
        var strings = new List<string>();
        OnnxTensor? t = null;
        var tensors = new List<OnnxTensor>();
        var seen = OnnxAttributeType.Undefined;  // which value field the file used (for IR v1 files without 'type')
        while (r.More)
        {
            long at = r.Offset;
            var (field, wire) = r.ReadTag();
            switch (field)
            {
                case 1: r.Expect(wire, WireType.LengthDelimited, "AttributeProto.name"); name = r.ReadString(); break;
                case 20: r.Expect(wire, WireType.Varint, "AttributeProto.type"); type = (OnnxAttributeType)(int)r.ReadVarint(); break;
                case 2: r.Expect(wire, WireType.Fixed32, "AttributeProto.f"); f = BitConverter.UInt32BitsToSingle(r.ReadFixed32()); seen = OnnxAttributeType.Float; break;
                case 3: r.Expect(wire, WireType.Varint, "AttributeProto.i"); i = (long)r.ReadVarint(); seen = OnnxAttributeType.Int; break;
                case 4: r.Expect(wire, WireType.LengthDelimited, "AttributeProto.s"); s = r.ReadString(); seen = OnnxAttributeType.String; break;
                case 5: r.Expect(wire, WireType.LengthDelimited, "AttributeProto.t"); t = ReadTensor(r.ReadMessage()); seen = OnnxAttributeType.Tensor; break;
                case 6: r.Skip(wire); seen = OnnxAttributeType.Graph; break;
                case 7: r.ReadFloats(wire, floats); seen = OnnxAttributeType.Floats; break;
                case 8: r.ReadInt64s(wire, ints); seen = OnnxAttributeType.Ints; break;
                case 9: r.Expect(wire, WireType.LengthDelimited, "AttributeProto.strings"); strings.Add(r.ReadString()); seen = OnnxAttributeType.Strings; break;
                case 10: r.Expect(wire, WireType.LengthDelimited, "AttributeProto.tensors"); tensors.Add(ReadTensor(r.ReadMessage())); seen = OnnxAttributeType.Tensors; break;
                case 11: r.Skip(wire); seen = OnnxAttributeType.Graphs; break;
                case 22: r.Skip(wire); seen = OnnxAttributeType.SparseTensor; break;
                case 23: r.Skip(wire); seen = OnnxAttributeType.SparseTensors; break;
                default: r.Skip(wire); break;
            }
        }
        if (type == OnnxAttributeType.Undefined) type = seen;
        return new OnnxAttribute(name, type, f, i, s, floats.ToArray(), ints.ToArray(), strings.ToArray(), t, tensors.ToArray());
    }

    private static OnnxValueInfo ReadValueInfo(ProtoReader r)
    {
        string name = "";
        var elem = OnnxDataType.Undefined;
        var dims = new List<long?>();
        while (r.More)
        {
            var (field, wire) = r.ReadTag();
            if (field == 1 && wire == WireType.LengthDelimited) name = r.ReadString();
            else if (field == 2 && wire == WireType.LengthDelimited)
            {
                var type = r.ReadMessage();                       // TypeProto
                while (type.More)
                {
                    var (tf, tw) = type.ReadTag();
                    if (tf != 1 || tw != WireType.LengthDelimited) { type.Skip(tw); continue; }
                    var tensor = type.ReadMessage();              // TypeProto.Tensor
                    while (tensor.More)
                    {
                        var (ef, ew) = tensor.ReadTag();
                        if (ef == 1 && ew == WireType.Varint) elem = (OnnxDataType)(int)tensor.ReadVarint();
                        else if (ef == 2 && ew == WireType.LengthDelimited)
                        {
                            var shape = tensor.ReadMessage();     // TensorShapeProto
                            while (shape.More)
                            {
                                var (sf, sw) = shape.ReadTag();
                                if (sf != 1 || sw != WireType.LengthDelimited) { shape.Skip(sw); continue; }
                                var dim = shape.ReadMessage();    // Dimension: dim_value = 1, dim_param = 2
                                long? value = null;
                                while (dim.More)
                                {
                                    var (df, dw) = dim.ReadTag();
                                    if (df == 1 && dw == WireType.Varint) value = (long)dim.ReadVarint();
                                    else dim.Skip(dw);
                                }
                                dims.Add(value);
                            }
                        }
                        else tensor.Skip(ew);
                    }
                }
            }
            else r.Skip(wire);
        }
        return new OnnxValueInfo(name, elem, dims.ToArray());
    }

    private static OnnxTensor ReadTensor(ProtoReader r)
    {
        long start = r.Start;
        var dims = new List<long>();
        var dataType = OnnxDataType.Undefined;
        string name = "";
        ReadOnlySpan<byte> raw = default;
        long rawAt = -1;
        var floats = new List<float>();
        var ints = new List<long>();      // int32_data (also carries 16-bit types' bits) and int64_data
        var doubles = new List<double>();
        while (r.More)
        {
            long at = r.Offset;
            var (field, wire) = r.ReadTag();
            switch (field)
            {
                case 1: r.ReadInt64s(wire, dims); break;
                case 2: r.Expect(wire, WireType.Varint, "TensorProto.data_type"); dataType = (OnnxDataType)(int)r.ReadVarint(); break;
                case 3: throw Unsupported($"tensor '{name}': TensorProto.segment (a tensor split over several messages)", at);
                case 4: r.ReadFloats(wire, floats); break;
                case 5: r.ReadInt64s(wire, ints); break;
                case 7: r.ReadInt64s(wire, ints); break;
                case 8: r.Expect(wire, WireType.LengthDelimited, "TensorProto.name"); name = r.ReadString(); break;
                case 9: { r.Expect(wire, WireType.LengthDelimited, "TensorProto.raw_data"); raw = r.ReadBytes(out rawAt); break; }
                case 10: r.ReadDoubles(wire, doubles); break;
                case 13: throw Unsupported($"tensor '{name}': external data (TensorProto.external_data)", at);
                case 14:
                {
                    r.Expect(wire, WireType.Varint, "TensorProto.data_location");
                    if (r.ReadVarint() != 0) throw Unsupported($"tensor '{name}': external data (TensorProto.data_location = EXTERNAL)", at);
                    break;
                }
                default: r.Skip(wire); break;
            }
        }
        long count = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new ProtoException($"tensor '{name}' has a negative dim {d} in {Format(dims)}", start);
            count *= d;
            if (count > int.MaxValue) throw new ProtoException($"tensor '{name}' of shape {Format(dims)} has more than {int.MaxValue} elements", start);
        }
        int n = (int)count;
        string what = $"tensor '{name}' ({dataType}, shape {Format(dims)})";
        Array data = dataType switch
        {
            OnnxDataType.Float => rawAt >= 0 ? Raw<float>(raw, n, what, rawAt)
                : Typed(floats, n, what, start, "float_data"),
            OnnxDataType.Float16 => rawAt >= 0 ? RawFloats(raw, n, 2, what, rawAt, (b, i) => (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(b[(2 * i)..])))
                : Typed(ints.Select(v => (float)BitConverter.UInt16BitsToHalf((ushort)v)).ToList(), n, what, start, "int32_data"),
            OnnxDataType.BFloat16 => rawAt >= 0 ? RawFloats(raw, n, 2, what, rawAt, (b, i) => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b[(2 * i)..]) << 16))
                : Typed(ints.Select(v => BitConverter.Int32BitsToSingle((int)((ushort)v) << 16)).ToList(), n, what, start, "int32_data"),
            OnnxDataType.Double => rawAt >= 0 ? Raw<double>(raw, n, what, rawAt) : Typed(doubles, n, what, start, "double_data"),
            OnnxDataType.Int32 => rawAt >= 0 ? Raw<int>(raw, n, what, rawAt) : Typed(ints.Select(v => (int)v).ToList(), n, what, start, "int32_data"),
            OnnxDataType.Int64 => rawAt >= 0 ? Raw<long>(raw, n, what, rawAt) : Typed(ints, n, what, start, "int64_data"),
            _ => throw new ProtoException($"{what}: element type {dataType} is not supported (supported: Float, Float16, BFloat16, Double, Int32, Int64)", start),
        };
        return new OnnxTensor(name, dims.ToArray(), dataType, data);
    }

    private static string Format(List<long> dims) => "[" + string.Join(", ", dims) + "]";

    private static T[] Typed<T>(List<T> values, int n, string what, long at, string field)
    {
        if (values.Count != n) throw new ProtoException($"{what}: {field} holds {values.Count} values, the shape needs {n}", at);
        return values.ToArray();
    }

    private delegate float ReadAt(ReadOnlySpan<byte> bytes, int index);

    private static float[] RawFloats(ReadOnlySpan<byte> raw, int n, int size, string what, long at, ReadAt read)
    {
        CheckRaw(raw, n, size, what, at);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = read(raw, i);
        return a;
    }

    // Little-endian element types read straight from raw_data (the engine runs on little-endian hosts only).
    private static T[] Raw<T>(ReadOnlySpan<byte> raw, int n, string what, long at) where T : unmanaged
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("onnx: big-endian hosts are not supported");
        CheckRaw(raw, n, System.Runtime.CompilerServices.Unsafe.SizeOf<T>(), what, at);
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(raw).ToArray();
    }

    private static void CheckRaw(ReadOnlySpan<byte> raw, int n, int size, string what, long at)
    {
        if ((long)n * size != raw.Length) throw new ProtoException($"{what}: raw_data holds {raw.Length} bytes, the shape needs {(long)n * size}", at);
    }
}
