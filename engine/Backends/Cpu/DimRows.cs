namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// Walks a tensor as rows along one dim: the dim is moved last (shape and every operand's strides) so
/// <see cref="StridedIter"/> visits one row per position of the other dims. Size-1 dims are kept and
/// nothing is merged, so the walked dim never fuses with its neighbours.
/// </summary>
internal static class DimRows
{
    /// <summary>Shape and strides with <paramref name="dim"/> moved to the end.</summary>
    public static (int[] shape, int[][] strides) MoveDimLast(int[] shape, int dim, params int[][] strides)
    {
        int r = shape.Length;
        var sh = new int[r];
        var st = new int[strides.Length][];
        for (int k = 0; k < strides.Length; k++) st[k] = new int[r];
        int p = 0;
        for (int i = 0; i < r; i++)
        {
            if (i == dim) continue;
            sh[p] = shape[i];
            for (int k = 0; k < strides.Length; k++) st[k][p] = strides[k][i];
            p++;
        }
        sh[r - 1] = shape[dim];
        for (int k = 0; k < strides.Length; k++) st[k][r - 1] = strides[k][dim];
        return (sh, st);
    }

    /// <summary>
    /// Runs <paramref name="body"/>(row offsets per operand) for every row, in parallel over deterministic
    /// chunks; <paramref name="rowLength"/> is the walked dim's size (rows = count / rowLength).
    /// </summary>
    public static void ForEachRow(CpuBackendOptions options, int[] shape, int[][] strides, int[] baseOffsets, int rowLength, RowBody body)
        => ForEachRow(options, shape, strides, baseOffsets, rowLength, () => body, b => b);

    /// <summary>
    /// As <see cref="ForEachRow(CpuBackendOptions, int[], int[][], int[], int, RowBody)"/>, with scratch state made once per
    /// chunk by <paramref name="init"/> (buffers reused across rows instead of allocated per row).
    /// </summary>
    public static void ForEachRow<TState>(CpuBackendOptions options, int[] shape, int[][] strides, int[] baseOffsets, int rowLength, Func<TState> init, Func<TState, RowBody> bodyOf)
    {
        long count = 1;
        foreach (var d in shape) count *= d;
        if (count == 0) return;
        long rows = count / rowLength;
        StridedIter.ParallelChunks(options, rows, rowLength, (lo, hi) =>
        {
            Span<int> off = stackalloc int[strides.Length];
            var counter = new int[shape.Length];
            var body = bodyOf(init());
            StridedIter.RowOffsets(shape, strides, baseOffsets, lo, off);
            StridedIter.RowCounter(shape, lo, counter);
            for (long r = lo; r < hi; r++)
            {
                body(off);
                StridedIter.NextRow(shape, strides, counter, off);
            }
        });
    }

    /// <summary>Work on one row; <paramref name="offsets"/> holds each operand's offset of the row's first element.</summary>
    public delegate void RowBody(ReadOnlySpan<int> offsets);
}
