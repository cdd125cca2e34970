using System.Buffers;
using System.Numerics;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu.Conv;

// Unfold + GEMM ("unfold-gemm"): the generic conv, the algorithm table's last row. It takes every plan, any dtype.
//
// The idea: im2col + one GEMM per chunk of images and group. Images are batched into the GEMM's column dimension
// (col [K, nb·Ho·Wo]) until it is wide enough for the GEMM to run near peak (ConvTargetCols): the deep ResNet layers have
// tiny planes (7×7, 4×4) whose per-image GEMMs are skinny and slow. The chunk is bounded so that the column scratch stays
// under ConvMaxColElements, and chunks are equal (16 images: 8 + 8, not 11 + 5). Im2col, col2im and the row regrouping
// between [N, O, P] and [O, nb·P] run in parallel over disjoint rows; the GEMM uses its own threads. For float32/float64
// the unfold writes the GEMM's packed-B layout directly ("im2col-packed"; the transposed colᵀ for backward-weights),
// and a GEMM whose B is already packed gives each item whole-K blocks of C with no barrier per KC step. A single-image
// 1×1 stride-1 unpadded conv reads x as its column matrix directly. Backward-data is Wᵀ · dy, then col2im. The chunking
// depends only on the shapes, and every output element is produced in a fixed order, so results do not depend on timing.
//
// Where it wins: what the faster rows above it leave — other dtypes, groups, dilation, kernels and strides the
// specialised algorithms do not take, planes below 192 outputs that tiled bands leave (at 7² batching beat tiles by
// 1.0–1.4× on the 3×3 convs), the 4² backward-weights (n = 4608 over a 256-deep sum ran as fast as the blocked one).
//
// Tested against: the float64 direct convolution with small and odd chunks, single-image chunks, the direct 1×1 path,
// plain and packed column matrices, bit-identical across thread counts (tests/MtlMoe.Engine.Tests/CpuPerf/ConvScheduleTests.cs,
// ConvNorm/ConvForwardTests.cs).
internal sealed class UnfoldGemm : IConvAlgorithm
{
    public static readonly UnfoldGemm Instance = new();

    public string Name => "unfold-gemm";

    public bool Applies(in ConvPlan p, ConvPass pass) => true;

    public bool NeedsClearedOutput(ConvPass pass) => pass != ConvPass.Forward; // col2im adds into dx; dw as every backward-weights

    public void Run<T>(in ConvPlan p, ConvPass pass, in ConvArgs<T> a) where T : unmanaged, INumber<T>
    {
        switch (pass)
        {
            case ConvPass.Forward: Forward(a.A, a.AOffset, a.B, a.BOffset, a.Out, p); break;
            case ConvPass.BackwardData: BackwardData(a.A, a.AOffset, a.B, a.BOffset, a.Out, p); break;
            default: BackwardWeights(a.A, a.AOffset, a.B, a.BOffset, a.Out, p); break;
        }
    }

    /// <summary>Whether a conv with a column matrix unfolds it in the GEMM's packed-B layout (float32/float64 kernels only).</summary>
    internal static bool PacksB<T>(in ConvPlan p) where T : unmanaged =>
        p.On(CpuPath.Im2ColPacked) && (typeof(T) == typeof(float) || typeof(T) == typeof(double));

    /// <summary>Images per chunk: enough to reach ConvTargetCols, no more than the scratch bound allows (at least one), chunks equal.</summary>
    internal static int Chunk(in ConvPlan p)
    {
        int plane = Math.Max(p.OutPlane, 1);
        long want = (p.Options.ConvTargetCols + plane - 1) / plane;
        long cap = Math.Max(1, p.Options.ConvMaxColElements / Math.Max(1L, (long)Math.Max(p.K, p.Og) * plane));
        int nb = (int)Math.Clamp(Math.Min(want, cap), 1, Math.Max(p.N, 1));
        int chunks = (p.N + nb - 1) / Math.Max(nb, 1);
        return Math.Max(1, (p.N + chunks - 1) / Math.Max(chunks, 1)); // equal chunks (16 images: 8 + 8, not 11 + 5)
    }

    // col [K, cnt·P] ← unfold of images [n0, n0+cnt) of group g.
    private static void Unfold<T>(T[] x, int xOff, int cnt, ConvPlan p, T[] col) where T : unmanaged, INumber<T>
    {
        long t0 = ConvProfile.Start();
        int imageStride = p.C * p.InPlane, ld = cnt * p.OutPlane;
        StridedIter.ParallelChunks(p.Options, p.K, ld, (lo, hi) => Im2Col.Unfold(x, xOff, imageStride, cnt, p, col, ld, (int)lo, (int)hi, 0, p.Ho));
        ConvProfile.Since("    unfold (batched)", t0);
    }

    // Packed-B twin of Unfold: col ← unfold of images [n0, n0+cnt) in the GEMM's packed layout.
    private static void UnfoldPacked<T>(T[] x, int xOff, int cnt, ConvPlan p, GemmPackedLayout layout, T[] col) where T : unmanaged, INumber<T>
    {
        long t0 = ConvProfile.Start();
        int imageStride = p.C * p.InPlane, ld = cnt * p.OutPlane;
        StridedIter.ParallelChunks(p.Options, p.K, ld, (lo, hi) => Im2ColPacked.Unfold(x, xOff, imageStride, cnt, p, layout, col, (int)lo, (int)hi, 0, p.Ho));
        ConvProfile.Since("    unfold (batched)", t0);
    }

    // Transposed packed twin of Unfold for backward-weights: col ← colᵀ of images [n0, n0+cnt), packed for the GEMM.
    private static void UnfoldPackedTransposed<T>(T[] x, int xOff, int cnt, ConvPlan p, GemmPackedLayout layout, T[] col) where T : unmanaged, INumber<T>
    {
        long t0 = ConvProfile.Start();
        int imageStride = p.C * p.InPlane, ld = cnt * p.OutPlane, slivers = layout.PaddedCols(p.K) / layout.NR;
        StridedIter.ParallelChunks(p.Options, slivers, (long)layout.NR * ld,
            (lo, hi) => Im2ColPacked.UnfoldTransposed(x, xOff, imageStride, cnt, p, layout, col, (int)lo, (int)hi, 0, p.Ho));
        ConvProfile.Since("    unfold (batched)", t0);
    }

    // Moves rows [Og] of images [n0, n0+cnt) between [N, O, P] (at off) and the chunk matrix [Og, cnt·P].
    private static void Regroup<T>(T[] images, int off, int cnt, ConvPlan p, T[] chunk, bool toChunk) where T : unmanaged
    {
        long t0 = ConvProfile.Start();
        int imageStride = p.O * p.OutPlane, ld = cnt * p.OutPlane;
        StridedIter.ParallelChunks(p.Options, p.Og, ld, (lo, hi) => Im2Col.Regroup(images, off, imageStride, p.OutPlane, cnt, chunk, ld, toChunk, (int)lo, (int)hi));
        ConvProfile.Since("    regroup (batched)", t0);
    }

    // y [N, O, Ho, Wo] = N × G × [Og, Ho·Wo] from x [N, C, H, W] at xo and w [O, Cg, kh, kw] = G × [Og, K] at wo.
    private static void Forward<T>(T[] x, int xo, T[] w, int wo, T[] y, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int nb = Chunk(p), plane = p.OutPlane, threads = p.Options.Threads;
        bool packB = PacksB<T>(p);
        var layout = packB ? CpuGemm.PackedLayout<T>(p.Options) : default;
        int colLength = packB ? (int)layout.Length(p.K, nb * plane) : p.K * nb * plane;
        var col = p.Direct && nb == 1 ? null : ArrayPool<T>.Shared.Rent(colLength);  // col: [K, nb·P], plain or packed
        var tmp = nb > 1 ? ArrayPool<T>.Shared.Rent(p.Og * nb * plane) : null;       // tmp: [Og, nb·P]
        try
        {
            for (int n0 = 0; n0 < p.N; n0 += nb)
            {
                int cnt = Math.Min(nb, p.N - n0), cols = cnt * plane;
                for (int g = 0; g < p.G; g++)
                {
                    int xOff = xo + (n0 * p.C + g * p.Cg) * p.InPlane, yOff = (n0 * p.O + g * p.Og) * plane;
                    // [Og, cnt·P] = W_g · col: [Og, K] · [K, cnt·P]; a single image writes y directly.
                    Span<T> c = tmp is null || cnt == 1 ? y.AsSpan(yOff, p.Og * plane) : tmp.AsSpan(0, p.Og * cols);
                    var wg = w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K);
                    if (col is not null && packB)
                    {
                        UnfoldPacked(x, xOff, cnt, p, layout, col);
                        long t0 = ConvProfile.Start();
                        CpuGemm.GemmPacked(p.Options, layout, false, p.Og, cols, p.K, T.One, wg, p.K, col.AsSpan(0, (int)layout.Length(p.K, cols)),
                            T.Zero, c, cols, threads);
                        ConvProfile.Since("    gemm (batched, packed B)", t0);
                    }
                    else
                    {
                        if (col is not null) Unfold(x, xOff, cnt, p, col);
                        ReadOnlySpan<T> b = col is null ? x.AsSpan(xOff, p.ColLength) : col.AsSpan(0, p.K * cols);
                        CpuGemm.Gemm(p.Options, false, false, p.Og, cols, p.K, T.One, wg, p.K, b, cols, T.Zero, c, cols);
                    }
                    if (tmp is not null && cnt > 1) Regroup(y, yOff, cnt, p, tmp, toChunk: false);
                }
            }
        }
        finally
        {
            if (col is not null) ArrayPool<T>.Shared.Return(col);
            if (tmp is not null) ArrayPool<T>.Shared.Return(tmp);
        }
    }

    // dx [N, C, H, W] (cleared) += col2im(W_gᵀ · dy) from dy [N, O, Ho, Wo] at dyo and w [O, Cg, kh, kw] at wo.
    private static void BackwardData<T>(T[] dy, int dyo, T[] w, int wo, T[] dx, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int nb = Chunk(p), plane = p.OutPlane, imageStride = p.C * p.InPlane;
        var col = p.Direct && nb == 1 ? null : ArrayPool<T>.Shared.Rent(p.K * nb * plane); // dcol: [K, nb·P]
        var dyb = nb > 1 ? ArrayPool<T>.Shared.Rent(p.Og * nb * plane) : null;            // dyb: [Og, nb·P]
        try
        {
            for (int n0 = 0; n0 < p.N; n0 += nb)
            {
                int cnt = Math.Min(nb, p.N - n0), cols = cnt * plane;
                for (int g = 0; g < p.G; g++)
                {
                    int dxOff = (n0 * p.C + g * p.Cg) * p.InPlane, dyOff = dyo + (n0 * p.O + g * p.Og) * plane;
                    ReadOnlySpan<T> b = dy.AsSpan(dyOff, p.Og * plane);
                    if (dyb is not null && cnt > 1) { Regroup(dy, dyOff, cnt, p, dyb, toChunk: true); b = dyb.AsSpan(0, p.Og * cols); }
                    // dcol = W_gᵀ · dy: [K, Og] · [Og, cnt·P] (written straight into dx for a single-image direct 1×1 conv)
                    var c = col is null ? dx.AsSpan(dxOff, p.ColLength) : col.AsSpan(0, p.K * cols);
                    CpuGemm.Gemm(p.Options, true, false, p.K, cols, p.Og, T.One, w.AsSpan(wo + g * p.Og * p.K, p.Og * p.K), p.K,
                        b, cols, T.Zero, c, cols);
                    if (col is null) continue;
                    long t0 = ConvProfile.Start();
                    StridedIter.ParallelChunks(p.Options, cnt * p.Cg, p.Kh * p.Kw * plane,
                        (lo, hi) => Im2Col.Fold(col, cols, p, dx, dxOff, imageStride, (int)lo, (int)hi, 0, p.Ho));
                    ConvProfile.Since("    fold (batched)", t0);
                }
            }
        }
        finally
        {
            if (col is not null) ArrayPool<T>.Shared.Return(col);
            if (dyb is not null) ArrayPool<T>.Shared.Return(dyb);
        }
    }

    // dw [O, Cg, kh, kw] = G × [Og, K] (cleared) = Σ over chunks of dy · colᵀ from x [N, C, H, W] at xo and dy [N, O, Ho, Wo] at dyo.
    private static void BackwardWeights<T>(T[] x, int xo, T[] dy, int dyo, T[] dw, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int nb = Chunk(p), plane = p.OutPlane, threads = p.Options.Threads;
        bool packB = PacksB<T>(p);
        var layout = packB ? CpuGemm.PackedLayout<T>(p.Options) : default;
        int colLength = packB ? (int)layout.Length(nb * plane, p.K) : p.K * nb * plane;
        var col = p.Direct && nb == 1 ? null : ArrayPool<T>.Shared.Rent(colLength);  // col: [K, nb·P], or colᵀ packed
        var dyb = nb > 1 ? ArrayPool<T>.Shared.Rent(p.Og * nb * plane) : null;       // dyb: [Og, nb·P]
        try
        {
            // dW_g += dy · colᵀ: [Og, cnt·P] · [cnt·P, K], chunks in order.
            for (int n0 = 0; n0 < p.N; n0 += nb)
            {
                int cnt = Math.Min(nb, p.N - n0), cols = cnt * plane;
                for (int g = 0; g < p.G; g++)
                {
                    int xOff = xo + (n0 * p.C + g * p.Cg) * p.InPlane, dyOff = dyo + (n0 * p.O + g * p.Og) * plane;
                    ReadOnlySpan<T> a = dy.AsSpan(dyOff, p.Og * plane);
                    if (dyb is not null && cnt > 1) { Regroup(dy, dyOff, cnt, p, dyb, toChunk: true); a = dyb.AsSpan(0, p.Og * cols); }
                    T beta = n0 == 0 ? T.Zero : T.One;
                    var dwg = dw.AsSpan(g * p.Og * p.K, p.Og * p.K);
                    if (col is not null && packB)
                    {
                        UnfoldPackedTransposed(x, xOff, cnt, p, layout, col);
                        long t0 = ConvProfile.Start();
                        CpuGemm.GemmPacked(p.Options, layout, false, p.Og, p.K, cols, T.One, a, cols, col.AsSpan(0, (int)layout.Length(cols, p.K)),
                            beta, dwg, p.K, threads);
                        ConvProfile.Since("    gemm (batched, packed colᵀ)", t0);
                        continue;
                    }
                    if (col is not null) Unfold(x, xOff, cnt, p, col);
                    ReadOnlySpan<T> b = col is null ? x.AsSpan(xOff, p.ColLength) : col.AsSpan(0, p.K * cols);
                    CpuGemm.Gemm(p.Options, false, true, p.Og, p.K, cols, T.One, a, cols, b, cols, beta, dwg, p.K);
                }
            }
        }
        finally
        {
            if (col is not null) ArrayPool<T>.Shared.Return(col);
            if (dyb is not null) ArrayPool<T>.Shared.Return(dyb);
        }
    }
}
