using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu.Conv;

// Blocked backward-weights ("blocked-backward-weights"): dW without a column matrix.
//
// The idea: dW[o, c, i, j] = Σₙ Σ_(oh, ow) xpad[n, c, s·oh + i, s·ow + j] · dy[n, o, oh, ow] is a GEMM over the output
// positions. x is copied once into zero-padded planes ([N, C, H+2ph, W+2pw]) and dy into 32-channel slivers with the
// position outermost ([N, ⌈O/32⌉, Ho·Wo, 32]); a register tile of taps × 32 output channels (a 3×3's nine taps of one
// input channel, or one kernel row of the 7×7 stem) then takes, per output position, the taps' inputs as broadcasts
// from the padded plane and one 2-vector row of dy — the GEMM micro-kernel's step, with no masks. The two copies are the
// size of x and dy, where the transposed unfold wrote kh·kw copies of x; a finished 3×3 tile goes to dw as 8×8
// transposes. Positions come in blocks of whole rows (about 256), so a block of one sliver of dy stays in L1 while every
// input channel reads it.
//
// Where it wins (in-process A/B against the unfold + GEMM path, float32, batch 16): 3×3 stride 1 at 28²/14²/7²/4²
// 1.30×/1.37×/1.31×/1.07×, at 56² 1.66×; stride 2 28² → 14² 1.17×, 14² → 7² 1.23–1.28×, 7² → 4² 0.95–1.07×; the stem
// 1.19–1.20×; the ResNet-18 step 1.08–1.11×. At 56² → 28² stride 2 it measured 0.74–0.96× (the padded copy is four
// times dy's positions and the stride-2 sum is slower: ≈ 280 GFLOPS against ≈ 360 at stride 1), and at 4² outputs the
// unfold's GEMM was as fast (1.07× on a quiet machine, 0.79–0.98× later the same day), so those keep the other paths.
//
// Applies: float32, AVX-512, groups 1, dilation 1, at least BlockedWeightsMinOutPlane (7²) outputs per image, and either
// a 3×3 pad-1 kernel of stride 1 (or stride 2 with an input plane up to 32²) or the 7×7 stride-2 pad-3 stem.
//
// Tested against: the float64 direct convolution, bit-identical across thread counts, the same weights as the unfold path
// it replaces (tests/MtlMoe.Engine.Tests/CpuPerf/ConvWeightGradTests.cs).
internal sealed unsafe class BlockedBackwardWeights : IConvAlgorithm
{
    public static readonly BlockedBackwardWeights Instance = new();

    private const int Taps = 9, NR = 32, L = 16;

    /// <summary>Output positions per block (whole rows, or whole images when a plane is smaller).</summary>
    private const int BlockPositions = 256;

    /// <summary>
    /// Largest input plane a stride-2 conv takes this path for: the padded copy is four times the size of dy's positions, and
    /// at 56² → 28² (64 → 128 channels, batch 16) the copy plus a slower sum (≈ 280 GFLOPS against ≈ 360 at stride 1) measured
    /// 0.74–0.96× the unfold path in-process; 28² → 14² 1.17×, 14² → 7² 1.23–1.28×, 7² → 4² 0.95–1.07×.
    /// </summary>
    internal const int MaxStride2Plane = 32 * 32;

    public string Name => "blocked-backward-weights";

    public bool Applies(in ConvPlan p, ConvPass pass) =>
        pass == ConvPass.BackwardWeights && p.DType == DType.Float32 && p.On(CpuPath.BlockedBackwardWeights) && Avx512F.IsSupported
        && p.G == 1 && p.N > 0 && p.OutPlane >= p.Options.BlockedWeightsMinOutPlane && p.Geo is { DilationH: 1, DilationW: 1 }
        && (p is { Kh: 3, Kw: 3 } && p.Geo is { PadH: 1, PadW: 1 } && p.Geo.StrideH == p.Geo.StrideW
                && (p.Geo.StrideH == 1 || p.Geo.StrideH == 2 && p.InPlane <= MaxStride2Plane)
            || p is { Kh: 7, Kw: 7 } && p.Geo is { StrideH: 2, StrideW: 2, PadH: 3, PadW: 3 });

    public bool NeedsClearedOutput(ConvPass pass) => true; // as the other backward-weights (every element is overwritten)

    public void Run<T>(in ConvPlan p, ConvPass pass, in ConvArgs<T> a) where T : unmanaged, INumber<T> =>
        BackwardWeights((float[])(object)a.A, a.AOffset, (float[])(object)a.B, a.BOffset, (float[])(object)a.Out, p, p.Options.Threads);

    /// <summary>
    /// dw [O, C, kh, kw] (every element written) = ∂L/∂w of y = conv(x [N, C, H, W] at xo), given dy [N, O, Ho, Wo] at dyo;
    /// the caller checks Applies. Work items own (sliver, input channel) tiles for the whole sum, and every tile
    /// adds the positions in the same order, so results do not depend on the thread count.
    /// </summary>
    private static void BackwardWeights(float[] x, int xo, float[] dy, int dyo, float[] dw, ConvPlan p, int threads)
    {
        int hp = p.H + 2 * p.Geo.PadH, wp = p.W + 2 * p.Geo.PadW, slivers = (p.O + NR - 1) / NR, plane = p.OutPlane;
        var xpad = ArrayPool<float>.Shared.Rent(p.N * p.C * hp * wp); // xpad: [N, C, H+2ph, W+2pw]
        var dyt = ArrayPool<float>.Shared.Rent(p.N * slivers * plane * NR); // dyt: [N, ⌈O/32⌉, Ho·Wo, 32]
        try
        {
            var plan = p;
            // offsets[q]: the padded-plane index of output position q's top-left tap (input row and column stride·(oh, ow) − pad).
            var offsets = new int[plane];
            for (int q = 0; q < plane; q++) offsets[q] = p.Geo.StrideH * (q / p.Wo * wp + q % p.Wo);
            StridedIter.ParallelChunks(p.Options, (long)p.N * p.C, (long)hp * wp, (lo, hi) => PadInput(x, xo, xpad, plan, (int)lo, (int)hi));
            StridedIter.ParallelChunks(p.Options, (long)p.N * slivers, (long)NR * plane, (lo, hi) => PackGrad(dy, dyo, dyt, plan, (int)lo, (int)hi));
            // Tiles in sliver-major order, so that an item's tiles share few slivers of dy; at least two items per thread.
            int tiles = slivers * p.C * TileGroups(p), items = Math.Min(tiles, 2 * threads);
            WorkerTeam.For(p.Options, items, threads, item =>
                SumTiles(xpad, dyt, dw, offsets, plan, (int)((long)tiles * item / items), (int)((long)tiles * (item + 1) / items)));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(xpad);
            ArrayPool<float>.Shared.Return(dyt);
        }
    }

    [ThreadStatic] private static float[]? _acc;

    // Tiles per (sliver, input channel): one for a 3×3 kernel (its nine taps), one per kernel row for a 7×7 (seven taps each).
    private static int TileGroups(in ConvPlan p) => p.Kh == 3 ? 1 : p.Kh;

    // Tiles [tile0, tile1) (tile = (sliver · C + channel) · groups + kernel row group), summed over all positions block by
    // block; each is written to dw after its last block.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SumTiles(float[] xpad, float[] dyt, float[] dw, int[] offsets, in ConvPlan p, int tile0, int tile1)
    {
        int slivers = (p.O + NR - 1) / NR, w = p.Wo, wp = p.W + 2 * p.Geo.PadW, plane = p.OutPlane, count = tile1 - tile0;
        int groups = TileGroups(p), kk = p.Kh * p.Kw, tileTaps = kk / groups, tileLength = tileTaps * NR;
        // A block: whole output rows of one image, or whole images when a plane has fewer than BlockPositions positions.
        int imagesPerBlock = Math.Max(1, BlockPositions / plane), rowsPerBlock = imagesPerBlock > 1 ? p.Ho : Math.Clamp(BlockPositions / w, 1, p.Ho);
        nint aChannel = (nint)(p.H + 2 * p.Geo.PadH) * wp, aImage = p.C * aChannel, bSliver = (nint)plane * NR, bImage = slivers * bSliver, kAll = (nint)p.C * kk;
        // Tiles stay in memory between blocks; with a single block (small planes) each is finished at once and one suffices.
        bool oneBlock = imagesPerBlock >= p.N && rowsPerBlock == p.Ho;
        int accLength = (oneBlock ? 1 : count) * tileLength;
        var acc = _acc is { } buf && buf.Length >= accLength ? buf : _acc = GC.AllocateUninitializedArray<float>(accLength, pinned: true);
        fixed (float* pa = xpad, pb = dyt, pacc = acc, pdw = dw)
        fixed (int* po = offsets)
        {
            for (int n0 = 0; n0 < p.N; n0 += imagesPerBlock)
            {
                int images = Math.Min(imagesPerBlock, p.N - n0);
                for (int h0 = 0; h0 < p.Ho; h0 += rowsPerBlock)
                {
                    int rows = Math.Min(rowsPerBlock, p.Ho - h0);
                    bool first = n0 == 0 && h0 == 0, last = n0 + images == p.N && h0 + rows == p.Ho;
                    for (int i = 0; i < count; i++)
                    {
                        int tileIndex = tile0 + i, row = tileIndex % groups, c = tileIndex / groups % p.C, s = tileIndex / groups / p.C;
                        float* tile = oneBlock ? pacc : pacc + (nint)i * tileLength;
                        float* a = pa + n0 * aImage + c * aChannel + (nint)row * wp, b = pb + n0 * bImage + s * bSliver + (nint)h0 * w * NR;
                        if (groups == 1) Tile(images, po + h0 * w, rows * w, a, wp, aImage, b, bImage, tile, first);
                        else TileRow7(images, po + h0 * w, rows * w, a, aImage, b, bImage, tile, first);
                        // Written while still in L1: dw[32s + l, c, t] = tile[t, l] for the tile's taps t.
                        if (last) WriteTile(tile, tileTaps, pdw + (nint)s * NR * kAll + c * kk + row * tileTaps, kAll, Math.Min(NR, p.O - s * NR));
                    }
                }
            }
        }
    }

    // dw[l·kAll + t] = tile[t·32 + l] for l < outputs, t < taps: for nine taps, 0..7 as four 8×8 transposes when the sliver is whole.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WriteTile(float* tile, int taps, float* dw, nint kAll, int outputs)
    {
        if (taps != Taps)
        {
            for (int l = 0; l < outputs; l++)
                for (int t = 0; t < taps; t++) dw[l * kAll + t] = tile[t * NR + l];
            return;
        }
        if (outputs == NR)
            for (int l0 = 0; l0 < NR; l0 += 8) GemmTranspose.Transpose8x8(tile + l0, NR, dw + l0 * kAll, kAll);
        else
            for (int l = 0; l < outputs; l++)
                for (int t = 0; t < 8; t++) dw[l * kAll + t] = tile[t * NR + l];
        for (int l = 0; l < outputs; l++) dw[l * kAll + 8] = tile[8 * NR + l];
    }

    /// <summary>
    /// tile[9×32] (tap t's row at tile + 32t; zero instead of read when <paramref name="first"/>) += Σ over images and
    /// <paramref name="positions"/> positions q of a(q)[tap t] ⊗ b(q)[0..32): tap (i, j) of position q is a[offsets[q] + i·aRow + j]
    /// (a steps aImage per image); b steps 32 per position and bImage per image.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(int images, int* offsets, int positions, float* a, nint aRow, nint aImage, float* b, nint bImage, float* tile, bool first)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        if (!first)
        {
            c00 = Vector512.Load(tile); c01 = Vector512.Load(tile + 16); c10 = Vector512.Load(tile + 32); c11 = Vector512.Load(tile + 48);
            c20 = Vector512.Load(tile + 64); c21 = Vector512.Load(tile + 80); c30 = Vector512.Load(tile + 96); c31 = Vector512.Load(tile + 112);
            c40 = Vector512.Load(tile + 128); c41 = Vector512.Load(tile + 144); c50 = Vector512.Load(tile + 160); c51 = Vector512.Load(tile + 176);
            c60 = Vector512.Load(tile + 192); c61 = Vector512.Load(tile + 208); c70 = Vector512.Load(tile + 224); c71 = Vector512.Load(tile + 240);
            c80 = Vector512.Load(tile + 256); c81 = Vector512.Load(tile + 272);
        }
        for (int n = 0; n < images; n++)
        {
            float* bn = b + n * bImage, an = a + n * aImage;
            for (int q = 0; q < positions; q++)
            {
                float* r0 = an + offsets[q], r1 = r0 + aRow, r2 = r1 + aRow;
                var b0 = Vector512.Load(bn);
                var b1 = Vector512.Load(bn + L);
                Vector512<float> v;
                v = Vector512.Create(r0[0]); c00 = Avx512F.FusedMultiplyAdd(v, b0, c00); c01 = Avx512F.FusedMultiplyAdd(v, b1, c01);
                v = Vector512.Create(r0[1]); c10 = Avx512F.FusedMultiplyAdd(v, b0, c10); c11 = Avx512F.FusedMultiplyAdd(v, b1, c11);
                v = Vector512.Create(r0[2]); c20 = Avx512F.FusedMultiplyAdd(v, b0, c20); c21 = Avx512F.FusedMultiplyAdd(v, b1, c21);
                v = Vector512.Create(r1[0]); c30 = Avx512F.FusedMultiplyAdd(v, b0, c30); c31 = Avx512F.FusedMultiplyAdd(v, b1, c31);
                v = Vector512.Create(r1[1]); c40 = Avx512F.FusedMultiplyAdd(v, b0, c40); c41 = Avx512F.FusedMultiplyAdd(v, b1, c41);
                v = Vector512.Create(r1[2]); c50 = Avx512F.FusedMultiplyAdd(v, b0, c50); c51 = Avx512F.FusedMultiplyAdd(v, b1, c51);
                v = Vector512.Create(r2[0]); c60 = Avx512F.FusedMultiplyAdd(v, b0, c60); c61 = Avx512F.FusedMultiplyAdd(v, b1, c61);
                v = Vector512.Create(r2[1]); c70 = Avx512F.FusedMultiplyAdd(v, b0, c70); c71 = Avx512F.FusedMultiplyAdd(v, b1, c71);
                v = Vector512.Create(r2[2]); c80 = Avx512F.FusedMultiplyAdd(v, b0, c80); c81 = Avx512F.FusedMultiplyAdd(v, b1, c81);
                bn += NR;
            }
        }
        c00.Store(tile); c01.Store(tile + 16); c10.Store(tile + 32); c11.Store(tile + 48);
        c20.Store(tile + 64); c21.Store(tile + 80); c30.Store(tile + 96); c31.Store(tile + 112);
        c40.Store(tile + 128); c41.Store(tile + 144); c50.Store(tile + 160); c51.Store(tile + 176);
        c60.Store(tile + 192); c61.Store(tile + 208); c70.Store(tile + 224); c71.Store(tile + 240);
        c80.Store(tile + 256); c81.Store(tile + 272);
    }

    /// <summary>
    /// tile[7×32] (tap j's row at tile + 32j; zero instead of read when <paramref name="first"/>) += Σ over images and
    /// <paramref name="positions"/> positions q of a[offsets[q] + j] ⊗ b(q)[0..32): one kernel row of a 7×7 conv (a steps
    /// aImage per image; b steps 32 per position and bImage per image).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileRow7(int images, int* offsets, int positions, float* a, nint aImage, float* b, nint bImage, float* tile, bool first)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default;
        if (!first)
        {
            c00 = Vector512.Load(tile); c01 = Vector512.Load(tile + 16); c10 = Vector512.Load(tile + 32); c11 = Vector512.Load(tile + 48);
            c20 = Vector512.Load(tile + 64); c21 = Vector512.Load(tile + 80); c30 = Vector512.Load(tile + 96); c31 = Vector512.Load(tile + 112);
            c40 = Vector512.Load(tile + 128); c41 = Vector512.Load(tile + 144); c50 = Vector512.Load(tile + 160); c51 = Vector512.Load(tile + 176);
            c60 = Vector512.Load(tile + 192); c61 = Vector512.Load(tile + 208);
        }
        for (int n = 0; n < images; n++)
        {
            float* bn = b + n * bImage, an = a + n * aImage;
            for (int q = 0; q < positions; q++)
            {
                float* r = an + offsets[q];
                var b0 = Vector512.Load(bn);
                var b1 = Vector512.Load(bn + L);
                Vector512<float> v;
                v = Vector512.Create(r[0]); c00 = Avx512F.FusedMultiplyAdd(v, b0, c00); c01 = Avx512F.FusedMultiplyAdd(v, b1, c01);
                v = Vector512.Create(r[1]); c10 = Avx512F.FusedMultiplyAdd(v, b0, c10); c11 = Avx512F.FusedMultiplyAdd(v, b1, c11);
                v = Vector512.Create(r[2]); c20 = Avx512F.FusedMultiplyAdd(v, b0, c20); c21 = Avx512F.FusedMultiplyAdd(v, b1, c21);
                v = Vector512.Create(r[3]); c30 = Avx512F.FusedMultiplyAdd(v, b0, c30); c31 = Avx512F.FusedMultiplyAdd(v, b1, c31);
                v = Vector512.Create(r[4]); c40 = Avx512F.FusedMultiplyAdd(v, b0, c40); c41 = Avx512F.FusedMultiplyAdd(v, b1, c41);
                v = Vector512.Create(r[5]); c50 = Avx512F.FusedMultiplyAdd(v, b0, c50); c51 = Avx512F.FusedMultiplyAdd(v, b1, c51);
                v = Vector512.Create(r[6]); c60 = Avx512F.FusedMultiplyAdd(v, b0, c60); c61 = Avx512F.FusedMultiplyAdd(v, b1, c61);
                bn += NR;
            }
        }
        c00.Store(tile); c01.Store(tile + 16); c10.Store(tile + 32); c11.Store(tile + 48);
        c20.Store(tile + 64); c21.Store(tile + 80); c30.Store(tile + 96); c31.Store(tile + 112);
        c40.Store(tile + 128); c41.Store(tile + 144); c50.Store(tile + 160); c51.Store(tile + 176);
        c60.Store(tile + 192); c61.Store(tile + 208);
    }

    // Planes [lo, hi) of (image, channel): xpad[n, c, i, j] = x[n, c, i − ph, j − pw], zero on the border.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PadInput(float[] x, int xo, float[] xpad, in ConvPlan p, int lo, int hi)
    {
        int w = p.W, ph = p.Geo.PadH, pw = p.Geo.PadW, wp = w + 2 * pw, hp = p.H + 2 * ph;
        fixed (float* px = x, pp = xpad)
            for (int item = lo; item < hi; item++)
            {
                float* src = px + xo + (nint)item * p.InPlane, dst = pp + (nint)item * hp * wp;
                new Span<float>(dst, ph * wp).Clear();
                for (int h = 0; h < p.H; h++)
                {
                    // Element by element: the borders are 1–3 wide and the deep layers' rows 4–14 long, where calls cost more.
                    float* row = dst + (nint)(h + ph) * wp, s = src + (nint)h * w, d = row + pw;
                    for (int j = 0; j < pw; j++) { row[j] = 0f; d[w + j] = 0f; }
                    int j16 = 0;
                    for (; j16 + L <= w; j16 += L) Vector512.Load(s + j16).Store(d + j16);
                    for (int j = j16; j < w; j++) d[j] = s[j];
                }
                new Span<float>(dst + (nint)(p.H + ph) * wp, ph * wp).Clear();
            }
    }

    // Items [lo, hi) of (image, sliver): dyt[n, s, q, l] = dy[n, 32s + l, q], zero for 32s + l ≥ O.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackGrad(float[] dy, int dyo, float[] dyt, in ConvPlan p, int lo, int hi)
    {
        int slivers = (p.O + NR - 1) / NR, plane = p.OutPlane;
        fixed (float* pdy = dy, pt = dyt)
            for (int item = lo; item < hi; item++)
            {
                int n = item / slivers, o = item % slivers * NR;
                GemmTranspose.RowsToSliver(pdy + dyo + ((nint)n * p.O + o) * plane, plane, Math.Min(NR, p.O - o), plane, pt + (nint)item * plane * NR, NR);
            }
    }
}
