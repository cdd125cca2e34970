using System.Buffers.Binary;
using System.Text;

namespace MtlMoe.Engine.IO.Onnx;

/// <summary>Protocol-buffer wire types (the low three bits of a field's tag).</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// <summary>A malformed protobuf message: what went wrong and the byte offset in the file.</summary>
internal sealed class ProtoException(string what, long offset) : Exception($"{what} (at byte {offset})")
{
    public string What { get; } = what;
    public long Offset { get; } = offset;
}

/// <summary>
/// Reads the protobuf wire format over one message's bytes: a tag is a varint (field number &lt;&lt; 3 | wire
/// type), followed by a varint, 8 or 4 little-endian bytes, or a varint length and that many bytes. Nested
/// messages are read with a new reader over their bytes; <see cref="Start"/> keeps offsets file-relative so
/// every error names the byte where it happened. Groups (deprecated) are refused.
/// </summary>
internal ref struct ProtoReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _pos;

    /// <summary>File offset of the first byte of this message.</summary>
    public long Start { get; }

    public ProtoReader(ReadOnlySpan<byte> data, long start = 0)
    {
        _data = data;
        Start = start;
        _pos = 0;
    }

    /// <summary>True while bytes are left.</summary>
    public readonly bool More => _pos < _data.Length;

    /// <summary>File offset of the next byte.</summary>
    public readonly long Offset => Start + _pos;

    /// <summary>Reads the next tag: its field number and wire type.</summary>
    public (int Field, WireType Type) ReadTag()
    {
        long at = Offset;
        ulong tag = ReadVarint();
        int field = (int)(tag >> 3);
        var type = (WireType)(tag & 7);
        if (field <= 0 || tag >> 3 > int.MaxValue) throw new ProtoException($"invalid field number {tag >> 3}", at);
        if (type is WireType.StartGroup or WireType.EndGroup) throw new ProtoException($"field {field} uses protobuf groups, which are not supported", at);
        if ((int)type > 5) throw new ProtoException($"field {field} has invalid wire type {(int)type}", at);
        return (field, type);
    }

    /// <summary>A base-128 varint of at most ten bytes.</summary>
    public ulong ReadVarint()
    {
        long at = Offset;
        ulong v = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (_pos >= _data.Length) throw new ProtoException("truncated varint", at);
            byte b = _data[_pos++];
            v |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return v;
        }
        throw new ProtoException("varint longer than ten bytes", at);
    }

    /// <summary>Four little-endian bytes.</summary>
    public uint ReadFixed32()
    {
        if (_data.Length - _pos < 4) throw new ProtoException("truncated fixed32 value", Offset);
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(_data[_pos..]);
        _pos += 4;
        return v;
    }

    /// <summary>Eight little-endian bytes.</summary>
    public ulong ReadFixed64()
    {
        if (_data.Length - _pos < 8) throw new ProtoException("truncated fixed64 value", Offset);
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(_data[_pos..]);
        _pos += 8;
        return v;
    }

    /// <summary>A length-delimited field's bytes and the file offset where they start.</summary>
    public ReadOnlySpan<byte> ReadBytes(out long start)
    {
        long at = Offset;
        ulong len = ReadVarint();
        if (len > (ulong)(_data.Length - _pos)) throw new ProtoException($"length {len} runs past the end of its message ({_data.Length - _pos} bytes left)", at);
        var bytes = _data.Slice(_pos, (int)len);
        start = Offset;
        _pos += (int)len;
        return bytes;
    }

    /// <summary>A length-delimited UTF-8 string.</summary>
    public string ReadString()
    {
        var b = ReadBytes(out long at);
        try { return new UTF8Encoding(false, true).GetString(b); }
        catch (DecoderFallbackException) { throw new ProtoException("string field is not valid UTF-8", at); }
    }

    /// <summary>A reader over a nested message.</summary>
    public ProtoReader ReadMessage()
    {
        var b = ReadBytes(out long at);
        return new ProtoReader(b, at);
    }

    /// <summary>Skips a field of any (supported) wire type.</summary>
    public void Skip(WireType type)
    {
        switch (type)
        {
            case WireType.Varint: ReadVarint(); break;
            case WireType.Fixed64: ReadFixed64(); break;
            case WireType.Fixed32: ReadFixed32(); break;
            case WireType.LengthDelimited: ReadBytes(out _); break;
            default: throw new ProtoException($"cannot skip wire type {(int)type}", Offset);
        }
    }

    /// <summary>
    /// Appends a repeated varint field (int32/int64 semantics: two's complement in 64 bits) read either packed
    /// (one length-delimited run) or unpacked (one value per tag), as protobuf allows both.
    /// </summary>
    public void ReadInt64s(WireType type, List<long> into)
    {
        if (type == WireType.Varint) { into.Add((long)ReadVarint()); return; }
        Expect(type, WireType.LengthDelimited, "repeated varint");
        var b = ReadBytes(out long at);
        var r = new ProtoReader(b, at);
        while (r.More) into.Add((long)r.ReadVarint());
    }

    /// <summary>Appends a repeated float field, packed or not.</summary>
    public void ReadFloats(WireType type, List<float> into)
    {
        if (type == WireType.Fixed32) { into.Add(BitConverter.UInt32BitsToSingle(ReadFixed32())); return; }
        Expect(type, WireType.LengthDelimited, "repeated float");
        var b = ReadBytes(out long at);
        if (b.Length % 4 != 0) throw new ProtoException($"packed floats of {b.Length} bytes (not a multiple of 4)", at);
        for (int i = 0; i < b.Length; i += 4) into.Add(BinaryPrimitives.ReadSingleLittleEndian(b[i..]));
    }

    /// <summary>Appends a repeated double field, packed or not.</summary>
    public void ReadDoubles(WireType type, List<double> into)
    {
        if (type == WireType.Fixed64) { into.Add(BitConverter.UInt64BitsToDouble(ReadFixed64())); return; }
        Expect(type, WireType.LengthDelimited, "repeated double");
        var b = ReadBytes(out long at);
        if (b.Length % 8 != 0) throw new ProtoException($"packed doubles of {b.Length} bytes (not a multiple of 8)", at);
        for (int i = 0; i < b.Length; i += 8) into.Add(BinaryPrimitives.ReadDoubleLittleEndian(b[i..]));
    }

    /// <summary>Throws unless <paramref name="type"/> is what a field of kind <paramref name="what"/> must use.</summary>
    public readonly void Expect(WireType type, WireType expected, string what)
    {
        if (type != expected) throw new ProtoException($"{what} field has wire type {type}, expected {expected}", Offset);
    }
}
