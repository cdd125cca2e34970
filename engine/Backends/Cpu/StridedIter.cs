namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// Walks several same-shape layouts together, row by row (the last dim being the row), after merging
/// dims that are contiguous in every operand so that most walks become one long row.
/// </summary>
internal static class StridedIter
{
    /// <summary>Merges adjacent dims that are contiguous relative to each other in all operands; drops size-1 dims.</summary>
    public static (int[] shape, int[][] strides) Coalesce(int[] shape, params int[][] strides)
    {
        var sh = new List<int>(); var st = new List<int>[strides.Length];
        for (int k = 0; k < strides.Length; k++) st[k] = new List<int>();
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == 1) continue;
            if (sh.Count > 0)
            {
                int last = sh.Count - 1;
                bool merge = true;
                for (int k = 0; k < strides.Length; k++)
                    if (st[k][last] != strides[k][i] * shape[i]) { merge = false; break; }
                if (merge)
                {
                    sh[last] *= shape[i];
                    for (int k = 0; k < strides.Length; k++) st[k][last] = strides[k][i];
                    continue;
                }
            }
            sh.Add(shape[i]);
            for (int k = 0; k < strides.Length; k++) st[k].Add(strides[k][i]);
        }
        if (sh.Count == 0) { sh.Add(1); for (int k = 0; k < strides.Length; k++) st[k].Add(1); }
        var outSt = new int[strides.Length][];
        for (int k = 0; k < strides.Length; k++) outSt[k] = st[k].ToArray();
        return (sh.ToArray(), outSt);
    }

    /// <summary>Start offset of row <paramref name="row"/> (row-major over all dims but the last) for each operand.</summary>
    public static void RowOffsets(int[] shape, int[][] strides, int[] baseOffsets, long row, Span<int> offsets)
    {
        for (int k = 0; k < strides.Length; k++) offsets[k] = baseOffsets[k];
        for (int d = shape.Length - 2; d >= 0 && row > 0; d--)
        {
            int idx = (int)(row % shape[d]);
            row /= shape[d];
            for (int k = 0; k < strides.Length; k++) offsets[k] += idx * strides[k][d];
        }
    }

    /// <summary>Advances an odometer over all dims but the last, updating per-operand offsets.</summary>
    public static void NextRow(int[] shape, int[][] strides, int[] counter, Span<int> offsets)
    {
        for (int d = shape.Length - 2; d >= 0; d--)
        {
            counter[d]++;
            for (int k = 0; k < strides.Length; k++) offsets[k] += strides[k][d];
            if (counter[d] < shape[d]) return;
            for (int k = 0; k < strides.Length; k++) offsets[k] -= strides[k][d] * shape[d];
            counter[d] = 0;
        }
    }

    /// <summary>Multi-index of row <paramref name="row"/> into <paramref name="counter"/>.</summary>
    public static void RowCounter(int[] shape, long row, int[] counter)
    {
        for (int d = shape.Length - 2; d >= 0; d--) { counter[d] = (int)(row % shape[d]); row /= shape[d]; }
    }

    /// <summary>
    /// Splits [0, n) into chunks run in parallel on the threads <paramref name="options"/> allow when
    /// n·<paramref name="costPerItem"/> is large enough to pay for it; the split depends only on n and the thread count,
    /// and every caller makes its result independent of which chunk runs where, so results never depend on timing.
    /// </summary>
    public static void ParallelChunks(CpuBackendOptions options, long n, long costPerItem, Action<long, long> body)
    {
        long work = n * Math.Max(costPerItem, 1);
        int threads = options.Threads;
        if (threads <= 1 || work < 1 << 15 || n < 2) { body(0, n); return; }
        int chunks = (int)Math.Min(n, Math.Min(threads * 4L, Math.Max(2, work >> 14)));
        WorkerTeam.For(options, chunks, threads, c =>
        {
            long lo = n * c / chunks, hi = n * (c + 1) / chunks;
            if (hi > lo) body(lo, hi);
        });
    }
}
