using System.Buffers;
using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

// Tiled conv schedule for large output planes (the stem and the early ResNet stages). Image-groups (n, g) are
// spread over the threads; each thread unfolds a band of output rows of its image into a private column tile
// small enough to stay in its core's L2 and runs a one-thread GEMM on it, reading dy and writing y in place
// (leading dimension Ho·Wo) — no column matrix ever goes out to memory and no rows are regrouped. One image is
// only ever touched by one thread, so col2im needs no locks, and the band size depends only on the shapes.
public sealed partial class CpuBackend
{
    /// <summary>Elements of one thread's column tile [K, rows·Wo] (512 KiB of float32).</summary>
    internal static int ConvTileElements { get; set; } = 1 << 17;

    /// <summary>
    /// Smallest output plane (Ho·Wo) the tiled schedule is used for; below it images are batched into one GEMM. At 14² = 196
    /// outputs (ResNet's stride-2 convs from 28², 3×3 backward-weights at 14²) tiles measured 1.1–1.7× faster than batching
    /// (no regroup, col2im into an L2-sized band); at 7² = 49 batching won by 1.0–1.4× on the 3×3 convs.
    /// </summary>
    internal static int ConvTiledMinPlane { get; set; } = 192;

    /// <summary>Partial weight-gradient buffers the tiled backward-weight sums (fixed, so results do not depend on Threads).</summary>
    private const int ConvWeightParts = 4;

    internal static bool ConvTiled(in ConvPlan p) => p.OutPlane >= ConvTiledMinPlane && p.N * p.G >= 2;

    /// <summary>Whether strided 1×1 backward-data takes the tiled schedule at every plane size (tests turn it off).</summary>
    internal static bool ConvTiledStrided1x1BackwardData { get; set; } = true;

    // Strided 1×1 backward-data is a GEMM and a scatter into a mostly-zero dx: per image (no regroup of dy, each image
    // cleared in cache right before its scatter) it measured 1.2–1.3× faster than batching at 7² and 4² outputs.
    internal static bool ConvBackwardDataTiledAnyPlane(in ConvPlan p) =>
        ConvTiledStrided1x1BackwardData && p.Kh == 1 && p.Kw == 1 && !p.Direct && p.N * p.G >= 2;

    // Output rows per band: as many as fit the tile, at least one.
    private static int ConvBandRows(in ConvPlan p) => Math.Clamp(ConvTileElements / Math.Max(1, p.K * p.Wo), 1, Math.Max(p.Ho, 1));

    private static void ConvForwardTiled<T>(T[] x, int xo, T[] w, int wo, T[] y, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int rows = ConvBandRows(p), plane = p.OutPlane;
        bool packB = ConvPacksB<T>();
        var layout = packB ? CpuGemm.PackedLayout<T>() : default;
        int colLength = packB ? (int)layout.Length(p.K, rows * p.Wo) : p.K * rows * p.Wo;
        StridedIter.ParallelChunks(p.N * p.G, p.MacsPerImage / p.G, (lo, hi) =>
        {
            var col = p.Direct ? null : ArrayPool<T>.Shared.Rent(colLength); // col: [K, rows·Wo], plain or packed
            try
            {
                for (int item = (int)lo; item < hi; item++)
                {
                    int n = item / p.G, g = item % p.G;
                    int xOff = xo + (n * p.C + g * p.Cg) * p.InPlane, yOff = (n * p.O + g * p.Og) * plane;
                    var wg = w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K);
                    if (col is null)
                    {
                        CpuGemm.Gemm(false, false, p.Og, plane, p.K, T.One, wg, p.K, x.AsSpan(xOff, p.ColLength), plane,
                            T.Zero, y.AsSpan(yOff, p.Og * plane), plane, threads: 1);
                        continue;
                    }
                    for (int oh0 = 0; oh0 < p.Ho; oh0 += rows)
                    {
                        int oh1 = Math.Min(p.Ho, oh0 + rows), cols = (oh1 - oh0) * p.Wo;
                        // y[n, g, :, band] = W_g · col: [Og, K] · [K, cols], ldc = Ho·Wo
                        var yBand = y.AsSpan(yOff + oh0 * p.Wo, (p.Og - 1) * plane + cols);
                        if (packB)
                        {
                            Im2ColPacked.Unfold(x, xOff, 0, 1, p, layout, col, 0, p.K, oh0, oh1);
                            CpuGemm.GemmPacked(layout, false, p.Og, cols, p.K, T.One, wg, p.K, col.AsSpan(0, (int)layout.Length(p.K, cols)),
                                T.Zero, yBand, plane, threads: 1);
                            continue;
                        }
                        Im2Col.Unfold(x, xOff, 0, 1, p, col, cols, 0, p.K, oh0, oh1);
                        CpuGemm.Gemm(false, false, p.Og, cols, p.K, T.One, wg, p.K, col.AsSpan(0, p.K * cols), cols,
                            T.Zero, yBand, plane, threads: 1);
                    }
                }
            }
            finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
        });
    }

    private static void ConvBackwardDataTiled<T>(T[] dy, int dyo, T[] w, int wo, T[] dx, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int rows = ConvBandRows(p), plane = p.OutPlane;
        StridedIter.ParallelChunks(p.N * p.G, p.MacsPerImage / p.G, (lo, hi) =>
        {
            var col = p.Direct ? null : ArrayPool<T>.Shared.Rent(p.K * rows * p.Wo); // dcol: [K, rows·Wo]
            try
            {
                for (int item = (int)lo; item < hi; item++)
                {
                    int n = item / p.G, g = item % p.G;
                    int dxOff = (n * p.C + g * p.Cg) * p.InPlane, dyOff = dyo + (n * p.O + g * p.Og) * plane;
                    var wg = w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K);
                    if (col is null)
                    {
                        CpuGemm.Gemm(true, false, p.K, plane, p.Og, T.One, wg, p.K, dy.AsSpan(dyOff, p.Og * plane), plane,
                            T.Zero, dx.AsSpan(dxOff, p.ColLength), plane, threads: 1);
                        continue;
                    }
                    dx.AsSpan(dxOff, p.Cg * p.InPlane).Clear(); // dx comes uncleared: the bands' col2im add into it
                    for (int oh0 = 0; oh0 < p.Ho; oh0 += rows)
                    {
                        int oh1 = Math.Min(p.Ho, oh0 + rows), cols = (oh1 - oh0) * p.Wo;
                        // dcol = W_gᵀ · dy[n, g, :, band]: [K, Og] · [Og, cols], dy read with ld = Ho·Wo
                        CpuGemm.Gemm(true, false, p.K, cols, p.Og, T.One, wg, p.K,
                            dy.AsSpan(dyOff + oh0 * p.Wo, (p.Og - 1) * plane + cols), plane, T.Zero, col.AsSpan(0, p.K * cols), cols, threads: 1);
                        Im2Col.Fold(col, cols, p, dx, dxOff, 0, 0, p.Cg, oh0, oh1);
                    }
                }
            }
            finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
        });
    }

    private static void ConvBackwardWeightTiled<T>(T[] x, int xo, T[] dy, int dyo, T[] dw, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int rows = ConvBandRows(p), plane = p.OutPlane, items = p.N * p.G, wLen = p.O * p.K;
        int parts = Math.Min(items, ConvWeightParts);
        var partial = new T[parts][];
        partial[0] = dw;
        for (int q = 1; q < parts; q++) { partial[q] = ArrayPool<T>.Shared.Rent(wLen); partial[q].AsSpan(0, wLen).Clear(); }
        bool packB = ConvPacksB<T>();
        var layout = packB ? CpuGemm.PackedLayout<T>() : default;
        int colLength = packB ? (int)layout.Length(rows * p.Wo, p.K) : p.K * rows * p.Wo, slivers = packB ? layout.PaddedCols(p.K) / layout.NR : 0;
        try
        {
            WorkerTeam.For(parts, Threads, q =>
            {
                var acc = partial[q];
                var col = p.Direct ? null : ArrayPool<T>.Shared.Rent(colLength); // col: [K, rows·Wo], or colᵀ packed
                try
                {
                    for (int item = items * q / parts; item < items * (q + 1) / parts; item++)
                    {
                        int n = item / p.G, g = item % p.G;
                        int xOff = xo + (n * p.C + g * p.Cg) * p.InPlane, dyOff = dyo + (n * p.O + g * p.Og) * plane;
                        var dwg = acc.AsSpan(g * p.Og * p.K, p.Og * p.K);
                        if (col is null)
                        {
                            CpuGemm.Gemm(false, true, p.Og, p.K, plane, T.One, dy.AsSpan(dyOff, p.Og * plane), plane,
                                x.AsSpan(xOff, p.ColLength), plane, T.One, dwg, p.K, threads: 1);
                            continue;
                        }
                        for (int oh0 = 0; oh0 < p.Ho; oh0 += rows)
                        {
                            int oh1 = Math.Min(p.Ho, oh0 + rows), cols = (oh1 - oh0) * p.Wo;
                            // dW_g += dy[n, g, :, band] · colᵀ: [Og, cols] · [cols, K]
                            var dyBand = dy.AsSpan(dyOff + oh0 * p.Wo, (p.Og - 1) * plane + cols);
                            if (packB)
                            {
                                Im2ColPacked.UnfoldTransposed(x, xOff, 0, 1, p, layout, col, 0, slivers, oh0, oh1);
                                CpuGemm.GemmPacked(layout, false, p.Og, p.K, cols, T.One, dyBand, plane, col.AsSpan(0, (int)layout.Length(cols, p.K)),
                                    T.One, dwg, p.K, threads: 1);
                                continue;
                            }
                            Im2Col.Unfold(x, xOff, 0, 1, p, col, cols, 0, p.K, oh0, oh1);
                            CpuGemm.Gemm(false, true, p.Og, p.K, cols, T.One, dyBand, plane, col.AsSpan(0, p.K * cols), cols, T.One, dwg, p.K, threads: 1);
                        }
                    }
                }
                finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
            });
            for (int q = 1; q < parts; q++) Im2Col.AddInto<T>(partial[q].AsSpan(0, wLen), dw.AsSpan(0, wLen));
        }
        finally { for (int q = 1; q < parts; q++) ArrayPool<T>.Shared.Return(partial[q]); }
    }
}
