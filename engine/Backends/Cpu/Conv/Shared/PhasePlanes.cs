using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu.Conv.Shared;

/// <summary>
/// The four phase planes of a stride-2 conv's input or of its dx (even/odd rows × even/odd columns, each Ho×Wo with
/// Ho = ⌈H/2⌉, Wo = ⌈W/2⌉): split from x 32 input columns at a time with two permutes (the stride-2 forward, the 1×1
/// stride-2 GEMM's even phase), and merged back into dx 16 phase columns at a time (the stride-2 backward-data, the
/// 1×1 stride-2 GEMM's backward-data).
/// </summary>
internal static unsafe class PhasePlanes
{
    private const int L = 16;

    // The permutation vectors are built inside the kernels from constants, not read from static readonly fields: this class
    // has no other statics, so it is not yet initialised when its AggressiveOptimization kernels are compiled, and a read of
    // such a field then stays a guarded load in the loop (measured: the 1×1 stride-2 forward 1.16–1.36× and the 3×3
    // stride-2 forward 1.08–1.13× slower than with the vectors as constants).

    // Planes [lo, hi) of (image, channel): phase plane 2a + b of (n, c), at n·imageStride + c·channelStride + (2a + b)·phaseStride,
    // holds x[n, c, 2·oh + a, 2·ow + b] at oh·Wo + ow (zero past x); 32 input columns per step split into their even and odd
    // halves by two permutes. The odd-row (odd-column) phases are written only when oddRows (oddColumns).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Split(float[] x, int xo, float[] phases, nint imageStride, nint channelStride, nint phaseStride,
        bool oddRows, bool oddColumns, in ConvPlan p, int lo, int hi)
    {
        int wo = p.Wo, plane = p.OutPlane;
        bool evenW = p.W % 2 == 0;
        var evenLanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var oddLanes = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        fixed (float* px = x, pp = phases)
            for (int item = lo; item < hi; item++)
            {
                int n = item / p.C, c = item % p.C;
                float* src = px + xo + (nint)item * p.InPlane;
                float* dst = pp + n * imageStride + c * channelStride;
                for (int h = 0; h < p.H; h += oddRows ? 1 : 2)
                {
                    float* row = src + (nint)h * p.W;
                    float* even = dst + (h % 2) * 2 * phaseStride + (nint)(h / 2) * wo, odd = even + phaseStride;
                    for (int ow = 0; ow < wo; ow += L)
                    {
                        int left = Math.Min(L, wo - ow); // outputs this step, from 2·left input columns
                        Vector512<float> a, b;
                        // Full loads while the 32 columns stay inside this input plane (what an even row reads past its end lands
                        // in lanes past `left`, unused); an odd row's last odd column is past x and must load as zero.
                        int cols = Math.Min(2 * L, p.W - 2 * ow);
                        if (cols == 2 * L || (evenW && h * p.W + 2 * ow + 2 * L <= p.InPlane)) { a = Vector512.Load(row + 2 * ow); b = Vector512.Load(row + 2 * ow + L); }
                        else
                        {
                            a = Avx512F.MaskLoad(row + 2 * ow, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols)).AsSingle(), Vector512<float>.Zero);
                            b = Avx512F.MaskLoad(row + 2 * ow + L, Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(L), Vector512.Create(cols)).AsSingle(), Vector512<float>.Zero);
                        }
                        var ev = Avx512F.PermuteVar16x32x2(a, evenLanes, b);
                        var od = Avx512F.PermuteVar16x32x2(a, oddLanes, b);
                        // Full stores while the 16 lanes stay inside this phase plane: what spills past the row belongs to later rows
                        // of this item, which overwrite it; past the plane it would land in another item's plane.
                        if ((h / 2) * wo + ow + L <= plane)
                        {
                            ev.Store(even + ow);
                            if (oddColumns) od.Store(odd + ow);
                        }
                        else
                        {
                            var keep = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(left)).AsSingle();
                            Avx512F.MaskStore(even + ow, keep, ev);
                            if (oddColumns) Avx512F.MaskStore(odd + ow, keep, od);
                        }
                    }
                }
                // The odd-row phases' last row lies below x (odd H): zero, and cleared after the rows above have spilled into it.
                if (oddRows && p.H % 2 == 1)
                {
                    new Span<float>(dst + 2 * phaseStride + plane - wo, wo).Clear();
                    new Span<float>(dst + 3 * phaseStride + plane - wo, wo).Clear();
                }
            }
    }


    // Planes [lo, hi) of (image, channel): dx[n, c, 2a + py, 2b + px] = phases[2·py + px, n, c, a·Wo + b] where it lies inside
    // dx (odd H or W leave the last phase row or column out); each dx row interleaves two phase rows 16 columns at a time.
    // With evenOnly, phases holds only the even/even phase and the other three are zero (the 1×1 kernel).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Merge(float[] phases, long phaseLength, float[] dx, in ConvPlan p, int lo, int hi, bool evenOnly = false)
    {
        int wo = p.Wo, plane = p.OutPlane;
        var interleaveLow = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        var interleaveHigh = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        fixed (float* pph = phases, pdx = dx)
            for (int item = lo; item < hi; item++)
            {
                float* dst = pdx + (nint)item * p.InPlane;
                for (int h = 0; h < p.H; h++)
                {
                    if (evenOnly && h % 2 == 1) { ClearRow(dst + (nint)h * p.W, p.W); continue; }
                    float* even = pph + (h % 2) * 2 * phaseLength + (nint)item * plane + (nint)(h / 2) * wo, odd = even + phaseLength;
                    float* row = dst + (nint)h * p.W;
                    for (int b = 0; b < wo; b += L)
                    {
                        int left = Math.Min(L, wo - b), cols = p.W - 2 * b; // phase columns this step; dx columns from 2b on
                        Vector512<float> e, o;
                        if (left == L) { e = Vector512.Load(even + b); o = evenOnly ? Vector512<float>.Zero : Vector512.Load(odd + b); }
                        else
                        {
                            var keep = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(left)).AsSingle();
                            e = Avx512F.MaskLoad(even + b, keep, Vector512<float>.Zero);
                            o = evenOnly ? Vector512<float>.Zero : Avx512F.MaskLoad(odd + b, keep, Vector512<float>.Zero);
                        }
                        var low = Avx512F.PermuteVar16x32x2(e, interleaveLow, o);
                        var high = Avx512F.PermuteVar16x32x2(e, interleaveHigh, o);
                        if (cols >= 2 * L) { low.Store(row + 2 * b); high.Store(row + 2 * b + L); }
                        else
                        {
                            Avx512F.MaskStore(row + 2 * b, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols)).AsSingle(), low);
                            Avx512F.MaskStore(row + 2 * b + L, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(cols - L)).AsSingle(), high);
                        }
                    }
                }
            }
    }

    // n floats at row set to zero with 16-lane stores (the last one masked): odd rows of the 1×1 kernel's dx are short.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClearRow(float* row, int n)
    {
        int j = 0;
        for (; j + L <= n; j += L) Vector512<float>.Zero.Store(row + j);
        if (j < n) Avx512F.MaskStore(row + j, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n - j)).AsSingle(), Vector512<float>.Zero);
    }
}
