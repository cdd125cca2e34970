using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// AVX-512 max-pool forward for float32, strides 1 and 2, 16 outputs per step, in two passes per plane:
/// a horizontal pass keeps each input row's first maximum over every window's columns, then a vertical pass
/// keeps the first of those row maxima over the window's rows. Updating only on a strictly larger value (or
/// on the first NaN) row by row picks exactly the element the row-major scan of the scalar kernel picks, ties
/// and NaN included, so values and indices are identical to it.
/// </summary>
internal static unsafe class MaxPoolVec
{
    private const int L = 16; // float lanes

    /// <summary>True when <see cref="Planes"/> handles this geometry on this machine.</summary>
    public static bool Applies(CpuBackendOptions o, Pool2dGeometry g) => o.On(CpuPath.MaxPoolVec) && Avx512F.IsSupported
        && (g.StrideW == 1 || g.StrideW == 2) && 2 * g.PadW <= g.KernelW && 2 * g.PadH <= g.KernelH;

    /// <summary>Planes [lo, hi) of x (plane p at xo + p·h·w) into y and ix (flat h·W + w indices), like the scalar kernel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Planes(float[] x, int xo, float[] y, long[] ix, int lo, int hi, int h, int w, int ho, int wo, Pool2dGeometry g)
    {
        int kh = g.KernelH, kw = g.KernelW, sh = g.StrideH, sw = g.StrideW, ph = g.PadH, pw = g.PadW;
        int wo16 = (wo + L - 1) / L * L;
        // Padded row: -inf on both sides, long enough for the last 16-wide step's (two-vector) loads.
        int rowLen = wo16 * sw + kw + 2 * L;
        var rowBuf = ArrayPool<float>.Shared.Rent(rowLen);
        var hbBuf = ArrayPool<float>.Shared.Rent(h * wo16);   // hb: [h, wo16] row maxima
        var hcBuf = ArrayPool<int>.Shared.Rent(h * wo16);     // hc: [h, wo16] their input columns
        var tailV = stackalloc float[L];
        var tailI = stackalloc int[L];
        try
        {
            rowBuf.AsSpan(0, rowLen).Fill(float.NegativeInfinity);
            var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            var negInf = Vector512.Create(float.NegativeInfinity);
            fixed (float* px = x, py = y, prow = rowBuf, hb = hbBuf)
            fixed (int* hc = hcBuf)
            fixed (long* pix = ix)
            {
                for (int pl = lo; pl < hi; pl++)
                {
                    float* src = px + xo + (long)pl * h * w;
                    // Horizontal pass: hb[ih, ow] = first max of row ih over columns ow·sw − pw + j, j < kw.
                    for (int ih = 0; ih < h; ih++)
                    {
                        Unsafe.CopyBlockUnaligned(prow + pw, src + (long)ih * w, (uint)(w * sizeof(float)));
                        for (int ow0 = 0; ow0 < wo16; ow0 += L)
                        {
                            var best = negInf;
                            var at = Vector512<int>.Zero;
                            var col0 = (Vector512.Create(ow0) + lane) * sw - Vector512.Create(pw);
                            for (int j = 0; j < kw; j++)
                            {
                                float* p = prow + ow0 * sw + j;
                                var v = sw == 1 ? Vector512.Load(p) : Avx512F.PermuteVar16x32x2(Vector512.Load(p), even, Vector512.Load(p + L));
                                var take = Take(v, best);
                                best = Vector512.ConditionalSelect(take, v, best);
                                at = Vector512.ConditionalSelect(take.AsInt32(), col0 + Vector512.Create(j), at);
                            }
                            best.Store(hb + ih * wo16 + ow0);
                            at.Store(hc + ih * wo16 + ow0);
                        }
                    }
                    // Vertical pass over the window rows of each output row.
                    float* dst = py + (long)pl * ho * wo;
                    long* dix = pix + (long)pl * ho * wo;
                    for (int oh = 0; oh < ho; oh++)
                    {
                        int h0 = Math.Max(oh * sh - ph, 0), h1 = Math.Min(oh * sh - ph + kh, h);
                        for (int ow0 = 0; ow0 < wo; ow0 += L)
                        {
                            var best = negInf;
                            // The scalar kernel's starting index: the window's first valid element.
                            var at = Vector512.Max((Vector512.Create(ow0) + lane) * sw - Vector512.Create(pw), Vector512<int>.Zero) + Vector512.Create(h0 * w);
                            for (int ih = h0; ih < h1; ih++)
                            {
                                var v = Vector512.Load(hb + ih * wo16 + ow0);
                                var take = Take(v, best);
                                best = Vector512.ConditionalSelect(take, v, best);
                                at = Vector512.ConditionalSelect(take.AsInt32(), Vector512.Load(hc + ih * wo16 + ow0) + Vector512.Create(ih * w), at);
                            }
                            float* d = dst + oh * wo + ow0;
                            long* di = dix + oh * wo + ow0;
                            if (ow0 + L <= wo)
                            {
                                best.Store(d);
                                Vector512.WidenLower(at).Store(di);
                                Vector512.WidenUpper(at).Store(di + L / 2);
                            }
                            else
                            {
                                best.Store(tailV); at.Store(tailI);
                                for (int q = 0; q < wo - ow0; q++) { d[q] = tailV[q]; di[q] = tailI[q]; }
                            }
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rowBuf);
            ArrayPool<float>.Shared.Return(hbBuf);
            ArrayPool<int>.Shared.Return(hcBuf);
        }
    }

    // Lanes where v replaces best: v > best, or v is the first NaN (a NaN best is never replaced).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Take(Vector512<float> v, Vector512<float> best)
    {
        var vNan = ~Vector512.Equals(v, v);
        var bNan = ~Vector512.Equals(best, best);
        return Vector512.GreaterThan(v, best) | Vector512.AndNot(vNan, bNan);
    }
}
