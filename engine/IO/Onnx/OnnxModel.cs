namespace MtlMoe.Engine.IO.Onnx;

/// <summary>An ONNX file's problem: the message names the file, what is wrong and, where it helps, the node, field and byte.</summary>
public sealed class OnnxFormatException(string message) : FormatException(message);

/// <summary>ONNX's TensorProto.DataType codes (the ones a CNN's weights use are supported; see <see cref="OnnxReader"/>).</summary>
public enum OnnxDataType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>float32.</summary>
    Float = 1,
    /// <summary>uint8.</summary>
    UInt8 = 2,
    /// <summary>int8.</summary>
    Int8 = 3,
    /// <summary>uint16.</summary>
    UInt16 = 4,
    /// <summary>int16.</summary>
    Int16 = 5,
    /// <summary>int32.</summary>
    Int32 = 6,
    /// <summary>int64.</summary>
    Int64 = 7,
    /// <summary>string.</summary>
    String = 8,
    /// <summary>bool.</summary>
    Bool = 9,
    /// <summary>IEEE half.</summary>
    Float16 = 10,
    /// <summary>float64.</summary>
    Double = 11,
    /// <summary>uint32.</summary>
    UInt32 = 12,
    /// <summary>uint64.</summary>
    UInt64 = 13,
    /// <summary>complex64.</summary>
    Complex64 = 14,
    /// <summary>complex128.</summary>
    Complex128 = 15,
    /// <summary>bfloat16.</summary>
    BFloat16 = 16,
}

/// <summary>ONNX's AttributeProto.AttributeType codes.</summary>
public enum OnnxAttributeType
{
    /// <summary>Not set (IR version 1 files).</summary>
    Undefined = 0,
    /// <summary>One float.</summary>
    Float = 1,
    /// <summary>One int64.</summary>
    Int = 2,
    /// <summary>One UTF-8 string.</summary>
    String = 3,
    /// <summary>One tensor.</summary>
    Tensor = 4,
    /// <summary>A subgraph (not supported).</summary>
    Graph = 5,
    /// <summary>A list of floats.</summary>
    Floats = 6,
    /// <summary>A list of int64.</summary>
    Ints = 7,
    /// <summary>A list of strings.</summary>
    Strings = 8,
    /// <summary>A list of tensors.</summary>
    Tensors = 9,
    /// <summary>A list of subgraphs (not supported).</summary>
    Graphs = 10,
    /// <summary>A sparse tensor (not supported).</summary>
    SparseTensor = 11,
    /// <summary>A list of sparse tensors (not supported).</summary>
    SparseTensors = 12,
    /// <summary>A type (not supported).</summary>
    TypeProto = 13,
    /// <summary>A list of types (not supported).</summary>
    TypeProtos = 14,
}

/// <summary>
/// A dense tensor of an ONNX file, decoded: float32 for FLOAT, FLOAT16 and BFLOAT16 (half types are widened on
/// load), float64 for DOUBLE, int32 for INT32 and int64 for INT64.
/// </summary>
/// <param name="Name">The tensor's name (an initializer's is what nodes refer to).</param>
/// <param name="Dims">The shape.</param>
/// <param name="SourceType">The type the file stored.</param>
/// <param name="Data">float[], double[], int[] or long[] of Π dims elements, row-major.</param>
public sealed record OnnxTensor(string Name, long[] Dims, OnnxDataType SourceType, Array Data)
{
    /// <summary>The engine dtype of <see cref="Data"/>.</summary>
    public DType DType => Data switch
    {
        float[] => DType.Float32,
        double[] => DType.Float64,
        int[] => DType.Int32,
        _ => DType.Int64,
    };

    /// <summary>The shape as engine dims (every ONNX dim of a loaded tensor fits in an int).</summary>
    public int[] Shape => Dims.Select(d => (int)d).ToArray();

    /// <summary>The elements as floats (throws for integer tensors).</summary>
    public float[] Floats => Data as float[] ?? throw new InvalidOperationException($"onnx tensor '{Name}' is {SourceType}, not a float tensor");

    /// <summary>The elements as int64 (int32 widened; throws for float tensors).</summary>
    public long[] Longs => Data switch
    {
        long[] l => l,
        int[] i => i.Select(x => (long)x).ToArray(),
        _ => throw new InvalidOperationException($"onnx tensor '{Name}' is {SourceType}, not an integer tensor"),
    };

    /// <summary>A new CPU tensor with a copy of the data.</summary>
    public Tensor ToTensor() => Data switch
    {
        float[] f => Tensor.FromArray((float[])f.Clone(), Shape),
        double[] d => Tensor.FromArray((double[])d.Clone(), Shape),
        int[] i => Tensor.FromArray((int[])i.Clone(), Shape),
        long[] l => Tensor.FromArray((long[])l.Clone(), Shape),
        _ => throw new InvalidOperationException($"onnx tensor '{Name}': unexpected data {Data.GetType().Name}"),
    };
}

/// <summary>One attribute of a node: exactly one of the value fields is meaningful, as <see cref="Type"/> says.</summary>
public sealed record OnnxAttribute(string Name, OnnxAttributeType Type, float F, long I, string S, float[] Floats, long[] Ints, string[] Strings, OnnxTensor? Tensor, OnnxTensor[] Tensors);

/// <summary>One operator application: inputs and outputs by value name (an empty name is an omitted optional input).</summary>
public sealed record OnnxNode(string Name, string OpType, string Domain, string[] Inputs, string[] Outputs, IReadOnlyDictionary<string, OnnxAttribute> Attributes)
{
    /// <summary>An int attribute, or <paramref name="fallback"/> when absent.</summary>
    public long Int(string name, long fallback) => Attributes.TryGetValue(name, out var a) ? a.I : fallback;

    /// <summary>A float attribute, or <paramref name="fallback"/> when absent.</summary>
    public float Float(string name, float fallback) => Attributes.TryGetValue(name, out var a) ? a.F : fallback;

    /// <summary>A string attribute, or <paramref name="fallback"/> when absent.</summary>
    public string String(string name, string fallback) => Attributes.TryGetValue(name, out var a) ? a.S : fallback;

    /// <summary>An ints attribute, or <paramref name="fallback"/> when absent.</summary>
    public long[] Ints(string name, long[] fallback) => Attributes.TryGetValue(name, out var a) ? a.Ints : fallback;

    /// <summary>"'name' (op)" for messages.</summary>
    public override string ToString() => $"node '{Name}' ({OpType})";
}

/// <summary>A graph input or output: its name, element type and dims (null for a symbolic or unknown dim).</summary>
public sealed record OnnxValueInfo(string Name, OnnxDataType ElemType, long?[] Dims);

/// <summary>A graph: nodes in the file's (topological) order, initializers by name, inputs and outputs.</summary>
public sealed record OnnxGraph(string Name, IReadOnlyList<OnnxNode> Nodes, IReadOnlyDictionary<string, OnnxTensor> Initializers,
    IReadOnlyList<OnnxValueInfo> Inputs, IReadOnlyList<OnnxValueInfo> Outputs);

/// <summary>A model: IR version, operator sets, producer and the main graph.</summary>
public sealed record OnnxModel(string Path, long IrVersion, IReadOnlyDictionary<string, long> Opsets, string ProducerName, string ProducerVersion, OnnxGraph Graph);
