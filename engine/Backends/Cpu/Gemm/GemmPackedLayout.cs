namespace MtlMoe.Engine.Backends.Cpu.Gemm;

/// <summary>
/// How a k×n B operand is laid out for the micro-kernel when the caller packs it (<see cref="CpuGemm.GemmPacked{T}"/>):
/// rows are cut into blocks of <see cref="KC"/> (the last one shorter), columns are padded with zeros to a multiple of
/// <see cref="NR"/>; block b holds its NR-wide slivers one after another, each kc×NR (NR values per row).
/// Element (r, q) lives at (r − r mod KC)·PaddedCols + (q − q mod NR)·kc + (r mod KC)·NR + q mod NR.
/// </summary>
internal readonly record struct GemmPackedLayout(GemmPath Path, int NR, int KC)
{
    /// <summary>n rounded up to a whole number of slivers.</summary>
    public int PaddedCols(int n) => (n + NR - 1) / NR * NR;

    /// <summary>Elements of the packed k×n operand.</summary>
    public long Length(int k, int n) => (long)k * PaddedCols(n);

    /// <summary>Offset of row r's first sliver and the depth kc of r's block (row r of sliver s is at RowStart + s·NR·kc).</summary>
    public long RowStart(int r, int k, int n, out int kc)
    {
        int p0 = r / KC * KC;
        kc = Math.Min(KC, k - p0);
        return (long)p0 * PaddedCols(n) + (long)(r - p0) * NR;
    }
}
