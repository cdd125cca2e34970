using System.Numerics;
using System.Runtime.CompilerServices;

namespace MtlMoe.Engine.Backends.Cpu.Conv.Shared;

/// <summary>
/// Unfolds a chunk of images' inputs [nb, Cg, H, W] (one group) into the column matrix [Cg·kh·kw, nb·Ho·Wo] a
/// conv GEMM reads (image t owns columns [t·Ho·Wo, (t+1)·Ho·Wo); zeros where the window hangs over the
/// padding), and folds it back additively (col2im). Rows are copied segment by segment through pointers:
/// the valid span of each output row is one block copy (stride 1) or a strided gather.
/// </summary>
internal static unsafe class Im2Col
{
    // Range [lo, hi) of output columns whose input column ow·s + off lies inside [0, size).
    private static (int Lo, int Hi) Valid(int off, int s, int size, int outSize)
    {
        int lo = off >= 0 ? 0 : (-off + s - 1) / s;
        int hi = size - 1 - off < 0 ? 0 : Math.Min(outSize, (size - 1 - off) / s + 1);
        lo = Math.Min(lo, outSize);
        return (lo, Math.Max(lo, hi));
    }

    /// <summary>
    /// col[r, t·B + q] ← x image t (at xOff + t·imageStride, channels of one group) for rows [rowLo, rowHi) of
    /// the column matrix and output rows [ohLo, ohHi) (B = (ohHi − ohLo)·Wo columns per image); col has leading
    /// dimension <paramref name="ld"/> (≥ nb·B); row r is written at (r − <paramref name="rowBase"/>)·ld.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Unfold<T>(T[] x, int xOff, int imageStride, int nb, in ConvPlan p, T[] col, int ld, int rowLo, int rowHi,
        int ohLo, int ohHi, int rowBase = 0) where T : unmanaged, INumber<T>
    {
        if (typeof(T) == typeof(float) && Im2ColVec.Applies(p))
        {
            Im2ColVec.Unfold((float[])(object)x, xOff, imageStride, nb, p, (float[])(object)col, ld, rowLo, rowHi, ohLo, ohHi, rowBase);
            return;
        }
        if (typeof(T) == typeof(float) && Im2ColSameVec.Applies(p))
        {
            Im2ColSameVec.Unfold((float[])(object)x, xOff, imageStride, nb, p, (float[])(object)col, ld, rowLo, rowHi, ohLo, ohHi, rowBase);
            return;
        }
        var g = p.Geo;
        int wo = p.Wo, sh = g.StrideH, sw = g.StrideW, plane = (ohHi - ohLo) * wo, kk = p.Kh * p.Kw;
        fixed (T* px = x, pc = col)
        {
            for (int r = rowLo; r < rowHi; r++)
            {
                int c = r / kk, i = r / p.Kw % p.Kh, j = r % p.Kw;
                int hOff = i * g.DilationH - g.PadH, wOff = j * g.DilationW - g.PadW;
                var (lo, hi) = Valid(wOff, sw, p.W, wo);
                for (int t = 0; t < nb; t++)
                {
                    T* dst = pc + (long)(r - rowBase) * ld + (long)t * plane;
                    T* src0 = px + xOff + (long)t * imageStride + (long)c * p.InPlane + wOff;
                    for (int oh = ohLo; oh < ohHi; oh++, dst += wo)
                    {
                        int ih = oh * sh + hOff;
                        if ((uint)ih >= (uint)p.H) { new Span<T>(dst, wo).Clear(); continue; }
                        for (int q = 0; q < lo; q++) dst[q] = T.Zero;
                        for (int q = hi; q < wo; q++) dst[q] = T.Zero;
                        T* src = src0 + (long)ih * p.W;
                        if (sw == 1) Unsafe.CopyBlockUnaligned(dst + lo, src + lo, (uint)((hi - lo) * sizeof(T)));
                        else for (int q = lo; q < hi; q++) dst[q] = src[q * sw];
                    }
                }
            }
        }
    }

    /// <summary>
    /// dx image t channel c (at dxOff + t·imageStride + c·H·W) += fold of col rows of channel c, columns of image t
    /// (output rows [ohLo, ohHi), B = (ohHi − ohLo)·Wo columns per image), for items [lo, hi) of t·Cg + c, in a
    /// fixed order; different items touch disjoint parts of dx.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Fold<T>(T[] col, int ld, in ConvPlan p, T[] dx, int dxOff, int imageStride, int lo, int hi, int ohLo, int ohHi)
        where T : unmanaged, INumber<T>
    {
        var g = p.Geo;
        int wo = p.Wo, sh = g.StrideH, sw = g.StrideW, plane = (ohHi - ohLo) * wo;
        fixed (T* pc = col, pd = dx)
        {
            for (int item = lo; item < hi; item++)
            {
                int t = item / p.Cg, c = item % p.Cg;
                T* dst0 = pd + dxOff + (long)t * imageStride + (long)c * p.InPlane;
                for (int i = 0; i < p.Kh; i++)
                    for (int j = 0; j < p.Kw; j++)
                    {
                        T* src = pc + (long)((c * p.Kh + i) * p.Kw + j) * ld + (long)t * plane;
                        int hOff = i * g.DilationH - g.PadH, wOff = j * g.DilationW - g.PadW;
                        var (qlo, qhi) = Valid(wOff, sw, p.W, wo);
                        bool vec2 = typeof(T) == typeof(float) && Col2ImVec.Applies(p, sw);
                        for (int oh = ohLo; oh < ohHi; oh++, src += wo)
                        {
                            int ih = oh * sh + hOff;
                            if ((uint)ih >= (uint)p.H) continue;
                            T* d = dst0 + (long)ih * p.W + wOff;
                            if (sw == 1) AddInto(src + qlo, d + qlo, qhi - qlo);
                            else if (vec2) Col2ImVec.AddStride2((float*)src, (float*)d, qlo, qhi);
                            else for (int q = qlo; q < qhi; q++) d[q * sw] += src[q];
                        }
                    }
            }
        }
    }

    /// <summary>dst[0..n) += src[0..n), vectorised.</summary>
    public static void AddInto<T>(T* src, T* dst, int n) where T : unmanaged, INumber<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
            for (; i <= n - Vector<T>.Count; i += Vector<T>.Count)
                Unsafe.WriteUnaligned(dst + i, Unsafe.ReadUnaligned<Vector<T>>(dst + i) + Unsafe.ReadUnaligned<Vector<T>>(src + i));
        for (; i < n; i++) dst[i] += src[i];
    }

    /// <summary>dst += src, vectorised.</summary>
    public static void AddInto<T>(ReadOnlySpan<T> src, Span<T> dst) where T : unmanaged, INumber<T>
    {
        fixed (T* ps = src, pd = dst) AddInto(ps, pd, src.Length);
    }

    /// <summary>
    /// Row gather between the per-image layout [.., rows, P] (row o of image t at aOff + t·imageStride + o·P) and the
    /// chunk layout [rows, nb·P] (ld): toChunk copies image rows into the chunk, otherwise back; rows [lo, hi) only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Regroup<T>(T[] images, int aOff, int imageStride, int plane, int nb, T[] chunk, int ld, bool toChunk, int lo, int hi)
        where T : unmanaged
    {
        uint bytes = (uint)(plane * sizeof(T));
        fixed (T* pa = images, pb = chunk)
            for (int o = lo; o < hi; o++)
                for (int t = 0; t < nb; t++)
                {
                    T* a = pa + aOff + (long)t * imageStride + (long)o * plane, b = pb + (long)o * ld + (long)t * plane;
                    if (toChunk) Unsafe.CopyBlockUnaligned(b, a, bytes);
                    else Unsafe.CopyBlockUnaligned(a, b, bytes);
                }
    }
}
