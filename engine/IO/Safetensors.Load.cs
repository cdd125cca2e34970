using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace MtlMoe.Engine.IO;

/// <summary>A safetensors file's problem: the message names the file and what is wrong.</summary>
public sealed class SafetensorsFormatException(string message) : FormatException(message);

/// <summary>One tensor of a safetensors header as stored: its name, dtype code ("F32", "BF16", "F16", …) and shape.</summary>
public sealed record SafetensorsEntryInfo(string Name, string DTypeCode, int[] Shape);

public static partial class Safetensors
{
    private readonly record struct Entry(string Name, Format Format, int[] Shape, long Begin, long End);

    /// <summary>Reads every tensor of a safetensors file as CPU tensors (see the overload for metadata).</summary>
    public static Dictionary<string, Tensor> Load(string path) => Load(path, out _);

    /// <summary>
    /// Reads every tensor of a safetensors file as CPU tensors, and its "__metadata__" strings. The whole
    /// header is validated before any tensor is allocated; a malformed file throws
    /// <see cref="SafetensorsFormatException"/> naming the file and the problem. BF16 and F16 tensors load as
    /// Float32 (exact); <see cref="ReadHeader"/> tells what the file stores.
    /// </summary>
    public static Dictionary<string, Tensor> Load(string path, out Dictionary<string, string> metadata)
    {
        using var fs = Open(path);
        var (entries, dataStart) = ReadValidatedHeader(path, fs, out metadata);
        var result = new Dictionary<string, Tensor>(entries.Count);
        try
        {
            foreach (var e in entries) result[e.Name] = ReadTensor(fs, e, dataStart);
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>
    /// The tensors a safetensors file holds, as stored (code such as "BF16", shape), in header order, after the
    /// same validation as <see cref="Load(string)"/>; reads no tensor data.
    /// </summary>
    public static IReadOnlyList<SafetensorsEntryInfo> ReadHeader(string path)
    {
        using var fs = Open(path);
        var (entries, _) = ReadValidatedHeader(path, fs, out _);
        return entries.Select(e => new SafetensorsEntryInfo(e.Name, e.Format.Code, e.Shape)).ToList();
    }

    private static FileStream Open(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors: big-endian hosts are not supported");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
    }

    // Reads and checks the header length, the JSON header and the data region's tiling; returns the entries and the
    // file offset of the data region.
    private static (List<Entry> Entries, long DataStart) ReadValidatedHeader(string path, FileStream fs, out Dictionary<string, string> metadata)
    {
        long fileLength = fs.Length;
        if (fileLength < 8) throw Bad(path, $"file is {fileLength} bytes, shorter than the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        RandomAccess.Read(fs.SafeFileHandle, lenBytes, 0);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (n > MaxHeaderBytes) throw Bad(path, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit");
        if (8 + (long)n > fileLength) throw Bad(path, $"header length {n} runs past the end of the file ({fileLength} bytes)");
        var header = new byte[n];
        ReadExactly(fs, header, 8);
        long dataLength = fileLength - 8 - (long)n;

        var entries = ParseHeader(path, header, out metadata);
        CheckDataRegion(path, entries, dataLength);
        return (entries, 8 + (long)n);
    }

    private static SafetensorsFormatException Bad(string path, string what) => new($"safetensors file '{path}': {what}");

    private static List<Entry> ParseHeader(string path, byte[] header, out Dictionary<string, string> metadata)
    {
        metadata = new Dictionary<string, string>();
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException ex) { throw Bad(path, $"header is not valid JSON ({ex.Message})"); }
        catch (ArgumentException ex) { throw Bad(path, $"header is not valid UTF-8 JSON ({ex.Message})"); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, $"header is a JSON {doc.RootElement.ValueKind}, not an object");
        var entries = new List<Entry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (!names.Add(prop.Name)) throw Bad(path, $"name '{prop.Name}' appears twice in the header");
            if (prop.Name == MetadataKey)
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad(path, $"'{MetadataKey}' must be an object of strings");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw Bad(path, $"metadata '{m.Name}' is a {m.Value.ValueKind}, not a string");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            entries.Add(ParseEntry(path, prop.Name, prop.Value));
        }
        return entries;
    }

    private static Entry ParseEntry(string path, string name, JsonElement v)
    {
        string where = $"tensor '{name}'";
        if (v.ValueKind != JsonValueKind.Object) throw Bad(path, $"{where} is a JSON {v.ValueKind}, not an object");
        if (!v.TryGetProperty("dtype", out var dt)) throw Bad(path, $"{where}: missing field 'dtype'");
        if (!v.TryGetProperty("shape", out var sh)) throw Bad(path, $"{where}: missing field 'shape'");
        if (!v.TryGetProperty("data_offsets", out var off)) throw Bad(path, $"{where}: missing field 'data_offsets'");
        if (dt.ValueKind != JsonValueKind.String) throw Bad(path, $"{where}: 'dtype' must be a string");
        var format = FormatOf(dt.GetString()!) ?? throw Bad(path, $"{where}: unsupported dtype '{dt.GetString()}' (supported: {ReadableCodes})");
        if (sh.ValueKind != JsonValueKind.Array) throw Bad(path, $"{where}: 'shape' must be an array");
        var shape = new int[sh.GetArrayLength()];
        long count = 1;
        int k = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw Bad(path, $"{where}: shape dim {k} ({d.GetRawText()}) is not a non-negative 32-bit integer");
            shape[k++] = dim;
            count = dim == 0 || count == 0 ? 0 : count * dim;
            if (count > int.MaxValue) throw Bad(path, $"{where}: shape {Shapes.Format(shape)} has more than {int.MaxValue} elements");
        }
        if (off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2) throw Bad(path, $"{where}: 'data_offsets' must be an array [begin, end]");
        var o = new long[2];
        for (int i = 0; i < 2; i++)
        {
            var e = off[i];
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out o[i]) || o[i] < 0)
                throw Bad(path, $"{where}: data offset {e.GetRawText()} is not a non-negative integer");
        }
        if (o[1] < o[0]) throw Bad(path, $"{where}: data_offsets end {o[1]} < begin {o[0]}");
        long expected = count * format.Size;
        if (o[1] - o[0] != expected)
            throw Bad(path, $"{where}: data_offsets [{o[0]}, {o[1]}] cover {o[1] - o[0]} bytes but {format.Code} {Shapes.Format(shape)} needs {expected}");
        return new Entry(name, format, shape, o[0], o[1]);
    }

    /// <summary>Offsets must lie inside the data region and tile it exactly: no overlap, no hole, no trailing bytes.</summary>
    private static void CheckDataRegion(string path, List<Entry> entries, long dataLength)
    {
        foreach (var e in entries)
            if (e.End > dataLength) throw Bad(path, $"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] lie outside the {dataLength}-byte data region");
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long at = 0;
        string prev = "";
        foreach (var e in sorted)
        {
            if (e.Begin < at) throw Bad(path, $"tensor '{e.Name}' [{e.Begin}, {e.End}] overlaps tensor '{prev}' (which ends at {at})");
            if (e.Begin > at) throw Bad(path, $"data region has a hole of {e.Begin - at} bytes at offset {at} before tensor '{e.Name}'");
            at = e.End;
            prev = e.Name;
        }
        if (at != dataLength) throw Bad(path, $"data region has {dataLength - at} trailing bytes after the last tensor (tensors cover {at} of {dataLength})");
    }

    private static Tensor ReadTensor(FileStream fs, Entry e, long dataStart)
    {
        long pos = dataStart + e.Begin;
        int count = Shapes.Count(e.Shape);
        switch (e.Format.Code)
        {
            case "F32": { var a = new float[count]; ReadExactly(fs, MemoryMarshal.AsBytes(a.AsSpan()), pos); return Tensor.FromArray(a, e.Shape); }
            case "F64": { var a = new double[count]; ReadExactly(fs, MemoryMarshal.AsBytes(a.AsSpan()), pos); return Tensor.FromArray(a, e.Shape); }
            case "I32": { var a = new int[count]; ReadExactly(fs, MemoryMarshal.AsBytes(a.AsSpan()), pos); return Tensor.FromArray(a, e.Shape); }
            case "I64": { var a = new long[count]; ReadExactly(fs, MemoryMarshal.AsBytes(a.AsSpan()), pos); return Tensor.FromArray(a, e.Shape); }
            case "BF16":
            {
                var a = new BFloat16[count];
                ReadExactly(fs, MemoryMarshal.AsBytes(a.AsSpan()), pos);
                return Tensor.FromArray(BFloat16Convert.ToFloat(a), e.Shape);
            }
            case "F16":
            {
                var a = new Half[count];
                ReadExactly(fs, MemoryMarshal.AsBytes(a.AsSpan()), pos);
                var f = new float[count];
                for (int i = 0; i < count; i++) f[i] = (float)a[i];   // exact: every half is a float
                return Tensor.FromArray(f, e.Shape);
            }
            default: throw new InvalidOperationException($"safetensors: no reader for format {e.Format.Code}");
        }
    }

    private static void ReadExactly(FileStream fs, Span<byte> dst, long pos)
    {
        while (dst.Length > 0)
        {
            int r = RandomAccess.Read(fs.SafeFileHandle, dst, pos);
            if (r <= 0) throw new EndOfStreamException($"safetensors file '{fs.Name}': unexpected end of file at byte {pos}");
            dst = dst[r..];
            pos += r;
        }
    }
}
