using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu.Conv.Shared;

/// <summary>
/// AVX-512 im2col for float32 stride-1 convs whose output rows are as wide as the input rows (Wo = W, "same" padding
/// along the width: every 3×3/pad-1 conv of a ResNet). Then the unfolded row (c, i, j) of an image is its input plane
/// shifted by a constant, (i·d − ph)·W + (j·d − pw), with the lanes whose window hangs over the padding zeroed:
/// one masked load per 16 outputs, across output-row boundaries, instead of a block copy per output row (the
/// deep layers' rows are only 4..14 wide, so the per-row copies cost more than the data). Same output as
/// <see cref="Im2Col.Unfold{T}"/>.
/// </summary>
internal static unsafe class Im2ColSameVec
{
    private const int L = 16;

    /// <summary>Widest row the vector unfold takes: at 28 columns the block copies measured 3–7 % faster (and 9–22 % slower at 4..14).</summary>
    internal const int MaxWidth = 16;

    /// <summary>True when <see cref="Unfold"/> handles this plan on this machine.</summary>
    public static bool Applies(in ConvPlan p) =>
        p.On(CpuPath.Im2ColSameVec) && Avx512F.IsSupported && p.Geo.StrideH == 1 && p.Geo.StrideW == 1 && p.Wo == p.W && p.W <= MaxWidth;

    // The last few mask tables this thread built, and what for: the packed unfold comes back in row groups, and the tiled
    // conv cycles through the bands of an image.
    private const int CachedTables = 8;
    [ThreadStatic] private static ushort[]?[]? _tables;
    [ThreadStatic] private static (int H, int W, int Kh, int Kw, int Ph, int Pw, int Dh, int Dw, int OhLo, int OhHi)[]? _keys;
    [ThreadStatic] private static int _next;

    /// <summary>
    /// masks[ij·chunks + u]: the lanes of chunk u (band positions 16u..16u+15) whose input lies inside the plane for
    /// kernel tap ij; positions past the band are off too.
    /// </summary>
    internal static ushort[] Masks(in ConvPlan p, int ohLo, int ohHi, int chunks)
    {
        var g = p.Geo;
        var key = (p.H, p.W, p.Kh, p.Kw, g.PadH, g.PadW, g.DilationH, g.DilationW, ohLo, ohHi);
        _tables ??= new ushort[]?[CachedTables];
        _keys ??= new (int, int, int, int, int, int, int, int, int, int)[CachedTables];
        for (int e = 0; e < CachedTables; e++)
            if (_tables[e] is { } hit && _keys[e] == key) return hit;
        int w = p.W, kk = p.Kh * p.Kw, plane = (ohHi - ohLo) * w;
        var masks = new ushort[kk * chunks];
        for (int ij = 0; ij < kk; ij++)
        {
            int di = ij / p.Kw * g.DilationH - g.PadH, dj = ij % p.Kw * g.DilationW - g.PadW;
            for (int q = 0, oh = ohLo, ow = 0; q < plane; q++)
            {
                if ((uint)(oh + di) < (uint)p.H && (uint)(ow + dj) < (uint)w) masks[ij * chunks + q / L] |= (ushort)(1 << (q % L));
                if (++ow == w) { ow = 0; oh++; }
            }
        }
        int slot = _next; _next = (_next + 1) % CachedTables;
        _keys[slot] = key;
        return _tables[slot] = masks;
    }

    /// <summary>A chunk mask as a vector: lane q all ones where bit q of <paramref name="bits"/> is set (for masked loads and stores).</summary>
    /// <remarks>
    /// The lane bits are built from constants, not read from a static field: read from this class's static field and
    /// inlined into <c>ConvImplicit.Tile</c>, the 3×3 stride-2 forward ran 3.4× slower whenever it was the first conv of a
    /// process, i.e. whenever the kernel was compiled (AggressiveOptimization, no tiering) before this class was
    /// initialised — most likely a class-init check inside the kernel's loop spoiling its register use (the generated
    /// code was not inspected).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Mask(ushort bits)
    {
        var laneBits = Avx512F.ShiftLeftLogicalVariable(Vector512<int>.One, Vector512<int>.Indices.AsUInt32());
        return Vector512.Equals(Vector512.Create((int)bits) & laneBits, laneBits).AsSingle();
    }

    // The 16 floats at src whose bits are set in the chunk mask, zeros elsewhere (lanes left out are never read).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> LoadChunk(float* src, ushort bits) => Avx512F.MaskLoad(src, Mask(bits), Vector512<float>.Zero);

    // Offset from an output position to its input for kernel tap ij, when Wo = W and the stride is 1.
    internal static int Shift(in ConvPlan p, int ij) =>
        (ij / p.Kw * p.Geo.DilationH - p.Geo.PadH) * p.W + ij % p.Kw * p.Geo.DilationW - p.Geo.PadW;

    /// <summary>Same contract as <see cref="Im2Col.Unfold{T}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Unfold(float[] x, int xOff, int imageStride, int nb, in ConvPlan p, float[] col, int ld, int rowLo, int rowHi,
        int ohLo, int ohHi, int rowBase)
    {
        int w = p.W, kk = p.Kh * p.Kw, q0 = ohLo * w, plane = (ohHi - ohLo) * w, chunks = (plane + L - 1) / L;
        var masks = Masks(p, ohLo, ohHi, chunks);
        fixed (float* px = x, pc = col)
        fixed (ushort* pm = masks)
        {
            for (int r = rowLo; r < rowHi; r++)
            {
                int c = r / kk, ij = r % kk, shift = Shift(p, ij);
                ushort* m = pm + ij * chunks;
                float* rowStart = pc + (long)(r - rowBase) * ld, rowEnd = rowStart + (long)nb * plane;
                for (int t = 0; t < nb; t++)
                {
                    // src[q] is the input of band position q (lanes whose input is outside the plane are never read).
                    float* src = px + xOff + (long)t * imageStride + (long)c * p.InPlane + q0 + shift;
                    float* dst = rowStart + (long)t * plane;
                    for (int u = 0; u < chunks; u++)
                    {
                        var v = LoadChunk(src + u * L, m[u]);
                        // Full-width stores in address order: what spills past this image's band is overwritten by the
                        // next image's; only a store past the row's end is masked (masked stores are slow on some cores).
                        if (dst + u * L + L <= rowEnd) v.Store(dst + u * L);
                        else Avx512F.MaskStore(dst + u * L, Vector512.LessThan(Vector512.Create(u * L) + Vector512<int>.Indices, Vector512.Create(plane)).AsSingle(), v);
                    }
                }
            }
        }
    }

    /// <summary>
    /// True when <see cref="UnfoldPacked"/> handles this plan and band: any width, as long as a band's positions fill
    /// whole 16-lane chunks, so that every chunk lands inside one half of a packed sliver.
    /// </summary>
    public static bool AppliesPacked(in ConvPlan p, int ohLo, int ohHi, int nr) =>
        p.On(CpuPath.Im2ColSameVec) && Avx512F.IsSupported && p.Geo.StrideH == 1 && p.Geo.StrideW == 1 && p.Wo == p.W
        && (ohHi - ohLo) * p.W % L == 0 && nr % L == 0;

    /// <summary>
    /// Same contract as <see cref="Im2ColPacked.Unfold{T}"/>, without the row buffer: each masked load is stored straight
    /// into its packed sliver. The caller checks <see cref="AppliesPacked"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void UnfoldPacked(float[] x, int xOff, int imageStride, int nb, in ConvPlan p, in GemmPackedLayout layout, float[] packed,
        int rowLo, int rowHi, int ohLo, int ohHi)
    {
        int w = p.W, kk = p.Kh * p.Kw, q0 = ohLo * w, plane = (ohHi - ohLo) * w, chunks = plane / L, nr = layout.NR;
        int cols = nb * plane, npad = layout.PaddedCols(cols);
        var masks = Masks(p, ohLo, ohHi, chunks);
        fixed (float* px = x, pp = packed)
        fixed (ushort* pm = masks)
        {
            for (int r = rowLo; r < rowHi; r++)
            {
                int c = r / kk, ij = r % kk, shift = Shift(p, ij);
                ushort* m = pm + ij * chunks;
                float* row = pp + layout.RowStart(r, p.K, cols, out int kc);
                nint step = (nint)nr * kc;
                int q = 0; // column of the packed row
                for (int t = 0; t < nb; t++)
                {
                    float* src = px + xOff + (long)t * imageStride + (long)c * p.InPlane + q0 + shift;
                    for (int u = 0; u < chunks; u++, q += L)
                    {
                        LoadChunk(src + u * L, m[u]).Store(row + q / nr * step + q % nr);
                    }
                }
                for (; q < npad; q += L) Vector512<float>.Zero.Store(row + q / nr * step + q % nr); // padding columns
            }
        }
    }
}
