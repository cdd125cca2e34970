using System.Buffers;
using System.Numerics;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu.Conv;

// Tiled bands ("tiled-bands"): unfold + GEMM per image, in L2-sized bands, one image per thread.
//
// The idea: for large output planes (the stem and the early ResNet stages) image-groups (n, g) are spread over the
// threads; each thread unfolds a band of output rows of its image into a private column tile small enough to stay in
// its core's L2 (ConvTileElements) and runs a one-thread GEMM on it, reading dy and writing y in place (leading dimension
// Ho·Wo): no column matrix goes out to memory and no rows are regrouped. One image is only ever touched by one thread,
// so col2im needs no locks; backward-data clears each image right before its col2im, while it is in cache (a separate
// clear of all of dx was a third of a 1×1 stride-2 backward-data at 28²); backward-weights sums into four partial
// buffers (fixed, so results do not depend on the thread count). The unfold writes the GEMM's packed-B layout directly
// (Shared/Im2ColPacked.cs; the transposed colᵀ for backward-weights). The band size depends only on the shapes.
//
// Where it wins: planes of 192+ outputs (ConvTiledMinPlane): at 14² (196 outputs: ResNet's stride-2 convs from 28², 3×3
// backward-weights at 14²) tiles measured 1.1–1.7× faster than batching images into one GEMM (no regroup, col2im into an
// L2-sized band); at 7² batching won by 1.0–1.4× on the 3×3 convs. Strided 1×1 backward-data (a GEMM and a scatter into a
// mostly-zero dx) goes per image at every plane size ("tiled-strided-1x1-backward-data"): 1.2–1.3× faster than batching
// at 7² and 4² outputs.
//
// Applies: any dtype, at least two image-groups, and an output plane of ConvTiledMinPlane or more; backward-data also a
// strided (or padded) 1×1 conv at any plane size.
//
// Tested against: the float64 direct convolution with bands forced onto small shapes, one-row bands, plain and packed
// column matrices, bit-identical across thread counts (tests/MtlMoe.Engine.Tests/CpuPerf/ConvScheduleTests.cs).
internal sealed class TiledBands : IConvAlgorithm
{
    public static readonly TiledBands Instance = new();

    /// <summary>Partial weight-gradient buffers the backward-weights sums (fixed, so results do not depend on the thread count).</summary>
    private const int ConvWeightParts = 4;

    public string Name => "tiled-bands";

    public bool Applies(in ConvPlan p, ConvPass pass) =>
        p.On(CpuPath.TiledBands) && p.N * p.G >= 2
        && (p.OutPlane >= p.Options.ConvTiledMinPlane
            || pass == ConvPass.BackwardData && p.On(CpuPath.TiledStrided1x1BackwardData) && p.Kh == 1 && p.Kw == 1 && !p.Direct);

    public bool NeedsClearedOutput(ConvPass pass) => pass == ConvPass.BackwardWeights;

    public void Run<T>(in ConvPlan p, ConvPass pass, in ConvArgs<T> a) where T : unmanaged, INumber<T>
    {
        switch (pass)
        {
            case ConvPass.Forward: Forward(a.A, a.AOffset, a.B, a.BOffset, a.Out, p); break;
            case ConvPass.BackwardData: BackwardData(a.A, a.AOffset, a.B, a.BOffset, a.Out, p); break;
            default: BackwardWeights(a.A, a.AOffset, a.B, a.BOffset, a.Out, p); break;
        }
    }

    // Output rows per band: as many as fit the tile, at least one.
    private static int BandRows(in ConvPlan p) => Math.Clamp(p.Options.ConvTileElements / Math.Max(1, p.K * p.Wo), 1, Math.Max(p.Ho, 1));

    private static void Forward<T>(T[] x, int xo, T[] w, int wo, T[] y, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int rows = BandRows(p), plane = p.OutPlane;
        bool packB = UnfoldGemm.PacksB<T>(p);
        var layout = packB ? CpuGemm.PackedLayout<T>(p.Options) : default;
        int colLength = packB ? (int)layout.Length(p.K, rows * p.Wo) : p.K * rows * p.Wo;
        StridedIter.ParallelChunks(p.Options, p.N * p.G, p.MacsPerImage / p.G, (lo, hi) =>
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
                        CpuGemm.Gemm(p.Options, false, false, p.Og, plane, p.K, T.One, wg, p.K, x.AsSpan(xOff, p.ColLength), plane,
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
                            CpuGemm.GemmPacked(p.Options, layout, false, p.Og, cols, p.K, T.One, wg, p.K, col.AsSpan(0, (int)layout.Length(p.K, cols)),
                                T.Zero, yBand, plane, threads: 1);
                            continue;
                        }
                        Im2Col.Unfold(x, xOff, 0, 1, p, col, cols, 0, p.K, oh0, oh1);
                        CpuGemm.Gemm(p.Options, false, false, p.Og, cols, p.K, T.One, wg, p.K, col.AsSpan(0, p.K * cols), cols,
                            T.Zero, yBand, plane, threads: 1);
                    }
                }
            }
            finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
        });
    }

    private static void BackwardData<T>(T[] dy, int dyo, T[] w, int wo, T[] dx, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int rows = BandRows(p), plane = p.OutPlane;
        StridedIter.ParallelChunks(p.Options, p.N * p.G, p.MacsPerImage / p.G, (lo, hi) =>
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
                        CpuGemm.Gemm(p.Options, true, false, p.K, plane, p.Og, T.One, wg, p.K, dy.AsSpan(dyOff, p.Og * plane), plane,
                            T.Zero, dx.AsSpan(dxOff, p.ColLength), plane, threads: 1);
                        continue;
                    }
                    dx.AsSpan(dxOff, p.Cg * p.InPlane).Clear(); // dx comes uncleared: the bands' col2im add into it
                    for (int oh0 = 0; oh0 < p.Ho; oh0 += rows)
                    {
                        int oh1 = Math.Min(p.Ho, oh0 + rows), cols = (oh1 - oh0) * p.Wo;
                        // dcol = W_gᵀ · dy[n, g, :, band]: [K, Og] · [Og, cols], dy read with ld = Ho·Wo
                        CpuGemm.Gemm(p.Options, true, false, p.K, cols, p.Og, T.One, wg, p.K,
                            dy.AsSpan(dyOff + oh0 * p.Wo, (p.Og - 1) * plane + cols), plane, T.Zero, col.AsSpan(0, p.K * cols), cols, threads: 1);
                        Im2Col.Fold(col, cols, p, dx, dxOff, 0, 0, p.Cg, oh0, oh1);
                    }
                }
            }
            finally { if (col is not null) ArrayPool<T>.Shared.Return(col); }
        });
    }

    private static void BackwardWeights<T>(T[] x, int xo, T[] dy, int dyo, T[] dw, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int rows = BandRows(p), plane = p.OutPlane, items = p.N * p.G, wLen = p.O * p.K;
        int parts = Math.Min(items, ConvWeightParts);
        var partial = new T[parts][];
        partial[0] = dw;
        for (int q = 1; q < parts; q++) { partial[q] = ArrayPool<T>.Shared.Rent(wLen); partial[q].AsSpan(0, wLen).Clear(); }
        bool packB = UnfoldGemm.PacksB<T>(p);
        var layout = packB ? CpuGemm.PackedLayout<T>(p.Options) : default;
        int colLength = packB ? (int)layout.Length(rows * p.Wo, p.K) : p.K * rows * p.Wo, slivers = packB ? layout.PaddedCols(p.K) / layout.NR : 0;
        try
        {
            WorkerTeam.For(p.Options, parts, p.Options.Threads, q =>
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
                            CpuGemm.Gemm(p.Options, false, true, p.Og, p.K, plane, T.One, dy.AsSpan(dyOff, p.Og * plane), plane,
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
                                CpuGemm.GemmPacked(p.Options, layout, false, p.Og, p.K, cols, T.One, dyBand, plane, col.AsSpan(0, (int)layout.Length(cols, p.K)),
                                    T.One, dwg, p.K, threads: 1);
                                continue;
                            }
                            Im2Col.Unfold(x, xOff, 0, 1, p, col, cols, 0, p.K, oh0, oh1);
                            CpuGemm.Gemm(p.Options, false, true, p.Og, p.K, cols, T.One, dyBand, plane, col.AsSpan(0, p.K * cols), cols, T.One, dwg, p.K, threads: 1);
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
