using System.Runtime.InteropServices;
using System.Text.Json;

namespace MtlMoe.Engine.IO;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// <c>{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}</c>
/// (offsets relative to the first byte after the header), then raw little-endian row-major data with
/// no holes. Read and written: F32, F64, I32, I64, BF16; read only: F16. BF16 and F16 load as Float32 (exact
/// widening); <see cref="Save(string, IReadOnlyDictionary{string, Tensor}, IReadOnlyDictionary{string, string}?, DType?)"/>
/// can store float tensors as BF16 (round to nearest even, as <see cref="BFloat16.FromFloat"/>).
/// </summary>
public static partial class Safetensors
{
    /// <summary>Largest header accepted (and written).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    internal const string MetadataKey = "__metadata__";

    /// <summary>The safetensors code of a dtype ("F32", "BF16", …).</summary>
    public static string Code(DType dtype) => dtype switch
    {
        DType.Float32 => "F32",
        DType.Float64 => "F64",
        DType.Int32 => "I32",
        DType.Int64 => "I64",
        DType.BFloat16 => "BF16",
        _ => throw new NotSupportedException($"safetensors: unsupported dtype {dtype}"),
    };

    /// <summary>
    /// An element format of the file: its code, bytes per element, and the dtype of the tensor it loads as
    /// (BF16 and F16 widen exactly to Float32 so that every loaded tensor is usable on every backend).
    /// </summary>
    internal readonly record struct Format(string Code, int Size, DType LoadsAs);

    /// <summary>The codes <see cref="Load(string)"/> reads, for messages.</summary>
    internal const string ReadableCodes = "F32, F64, I32, I64, BF16, F16";

    internal static Format? FormatOf(string code) => code switch
    {
        "F32" => new("F32", 4, DType.Float32),
        "F64" => new("F64", 8, DType.Float64),
        "I32" => new("I32", 4, DType.Int32),
        "I64" => new("I64", 8, DType.Int64),
        "BF16" => new("BF16", 2, DType.Float32),
        "F16" => new("F16", 2, DType.Float32),
        _ => null,
    };

    // The dtype a tensor is written as: float tensors become BF16 when asked; everything else keeps its dtype.
    private static DType StoredDType(Tensor t, DType? floatsAs) =>
        floatsAs == DType.BFloat16 && t.DType is DType.Float32 or DType.Float64 ? DType.BFloat16 : t.DType;

    /// <summary>
    /// Writes <paramref name="tensors"/> (any device, any layout; names sorted ordinally, data packed in that
    /// order) and optional string <paramref name="metadata"/> to <paramref name="path"/>. The file is written to
    /// a temporary file in the same folder and renamed over the path, so a crash never leaves a partial file.
    /// <paramref name="floatsAs"/> = <see cref="DType.BFloat16"/> stores every Float32 and Float64 tensor as BF16
    /// (Float64 goes through float, so it can round twice); null keeps each tensor's dtype.
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        DType? floatsAs = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors: big-endian hosts are not supported");
        if (floatsAs is not (null or DType.BFloat16))
            throw new ArgumentException($"safetensors: floats can be stored as bf16 or as they are, not as {floatsAs.Value.Name()} ({path})");
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        foreach (var n in names)
            if (n == MetadataKey) throw new ArgumentException($"safetensors: '{MetadataKey}' is reserved and cannot name a tensor ({path})");
        byte[] header = BuildHeader(names, tensors, metadata, floatsAs);

        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
                fs.Write(len);
                fs.Write(header);
                foreach (var n in names) WriteData(fs, tensors[n], StoredDType(tensors[n], floatsAs));
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static byte[] BuildHeader(List<string> names, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata,
        DType? floatsAs)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var n in names)
            {
                var t = tensors[n];
                var stored = StoredDType(t, floatsAs);
                long bytes = (long)t.Count * stored.SizeOf();
                w.WriteStartObject(n);
                w.WriteString("dtype", Code(stored));
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Pad with spaces so the data starts 8-byte aligned (as the reference implementation does).
        int len = (int)ms.Length, padded = (len + 7) / 8 * 8;
        var header = new byte[padded];
        ms.GetBuffer().AsSpan(0, len).CopyTo(header);
        header.AsSpan(len).Fill((byte)' ');
        return header;
    }

    private static void WriteData(Stream fs, Tensor t, DType stored)
    {
        if (stored == DType.BFloat16 && t.DType != DType.BFloat16)
        {
            fs.Write(MemoryMarshal.AsBytes<BFloat16>(BFloat16Convert.FromFloat(t.ToFloatArray())));
            return;
        }
        switch (t.DType)
        {
            case DType.Float32: fs.Write(MemoryMarshal.AsBytes<float>(t.ToArray<float>())); break;
            case DType.Float64: fs.Write(MemoryMarshal.AsBytes<double>(t.ToArray<double>())); break;
            case DType.Int32: fs.Write(MemoryMarshal.AsBytes<int>(t.ToArray<int>())); break;
            case DType.Int64: fs.Write(MemoryMarshal.AsBytes<long>(t.ToArray<long>())); break;
            case DType.BFloat16: fs.Write(MemoryMarshal.AsBytes<BFloat16>(t.ToArray<BFloat16>())); break;
            default: throw new NotSupportedException($"safetensors: unsupported dtype {t.DType}");
        }
    }
}
