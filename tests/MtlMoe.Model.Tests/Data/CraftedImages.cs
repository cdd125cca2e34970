namespace MtlMoe.Tests.Data;

/// <summary>Hand-made files for the decoder limit tests.</summary>
internal static class CraftedImages
{
    /// <summary>A PNG whose IHDR (valid CRC) claims <paramref name="w"/> × <paramref name="h"/> RGB pixels, with no real data (and <paramref name="padding"/> bytes of an ancillary chunk).</summary>
    public static byte[] PngHeader(int w, int h, int padding = 0)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BE(ihdr, 0, (uint)w); BE(ihdr, 4, (uint)h);
        ihdr[8] = 8; ihdr[9] = 2; // 8-bit truecolour
        Chunk(ms, "IHDR", ihdr);
        if (padding > 0) Chunk(ms, "pAdd", new byte[padding]);   // an ancillary chunk decoders skip: makes the file plausibly large
        Chunk(ms, "IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>A copy of a baseline JPEG whose frame header (SOF0) claims <paramref name="w"/> × <paramref name="h"/>; the data stays small.</summary>
    public static byte[] JpegClaiming(byte[] jpeg, int w, int h)
    {
        var b = (byte[])jpeg.Clone();
        for (int i = 2; i + 9 < b.Length; i++)
            if (b[i] == 0xFF && b[i + 1] == 0xC0)
            {
                b[i + 5] = (byte)(h >> 8); b[i + 6] = (byte)h; b[i + 7] = (byte)(w >> 8); b[i + 8] = (byte)w;
                return b;
            }
        throw new ArgumentException("no baseline SOF0 marker");
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        var len = new byte[4]; BE(len, 0, (uint)data.Length); s.Write(len);
        var body = new byte[4 + data.Length];
        for (int i = 0; i < 4; i++) body[i] = (byte)type[i];
        data.CopyTo(body, 4);
        s.Write(body);
        var crc = new byte[4]; BE(crc, 0, Crc32(body)); s.Write(crc);
    }

    private static void BE(byte[] b, int o, uint v) { b[o] = (byte)(v >> 24); b[o + 1] = (byte)(v >> 16); b[o + 2] = (byte)(v >> 8); b[o + 3] = (byte)v; }

    private static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var d in data)
        {
            c ^= d;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }
}
