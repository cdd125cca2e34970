using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu.Conv.Shared;

/// <summary>
/// Unfolds a conv input straight into the GEMM's packed-B layout (<see cref="GemmPackedLayout"/>) instead of a plain
/// column matrix the GEMM would then copy into that layout: one pass over the column data instead of two, which pays
/// most where the column matrix does not fit in cache (the batched deep layers). Each row of the column matrix is
/// unfolded into a small per-thread buffer (L1) by <see cref="Im2Col.Unfold{T}"/> and scattered sliver by sliver.
/// </summary>
internal static unsafe class Im2ColPacked
{
    // Elements of the per-thread row buffer (32 KiB of float32).
    private const int BufferElements = 8192;

    private static class RowBuffer<T> where T : unmanaged
    {
        [ThreadStatic] private static T[]? _row;

        public static T[] Get(int length)
        {
            if (_row is null || _row.Length < length) _row = GC.AllocateUninitializedArray<T>(length, pinned: true);
            return _row;
        }
    }

    /// <summary>
    /// Rows [rowLo, rowHi) of the column matrix [K, nb·B] of images t &lt; nb (at xOff + t·imageStride, one group) and
    /// output rows [ohLo, ohHi) (B = (ohHi − ohLo)·Wo columns per image), written into <paramref name="packed"/> in
    /// <paramref name="layout"/>; the padding columns of those rows are written as zeros.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Unfold<T>(T[] x, int xOff, int imageStride, int nb, in ConvPlan p, in GemmPackedLayout layout, T[] packed,
        int rowLo, int rowHi, int ohLo, int ohHi) where T : unmanaged, INumber<T>
    {
        if (typeof(T) == typeof(float) && Im2ColSameVec.AppliesPacked(p, ohLo, ohHi, layout.NR))
        {
            Im2ColSameVec.UnfoldPacked((float[])(object)x, xOff, imageStride, nb, p, layout, (float[])(object)packed, rowLo, rowHi, ohLo, ohHi);
            return;
        }
        int cols = nb * (ohHi - ohLo) * p.Wo, nr = layout.NR, npad = layout.PaddedCols(cols), slivers = npad / nr;
        // Rows go through the buffer a few at a time (about 32 KiB), so short rows do not pay the unfold's set-up each.
        int group = Math.Clamp(BufferElements / npad, 1, Math.Max(1, rowHi - rowLo));
        var buf = RowBuffer<T>.Get(group * npad);
        for (int q = 0; q < group; q++) buf.AsSpan(q * npad + cols, npad - cols).Clear(); // the unfold writes [0, cols) of each row
        bool wide = nr * sizeof(T) == 128 && Vector512.IsHardwareAccelerated;
        fixed (T* pb = buf, pp = packed)
        {
            for (int r0 = rowLo; r0 < rowHi; r0 += group)
            {
                int r1 = Math.Min(rowHi, r0 + group);
                Im2Col.Unfold(x, xOff, imageStride, nb, p, buf, npad, r0, r1, ohLo, ohHi, rowBase: r0);
                for (int r = r0; r < r1; r++)
                {
                    T* d = pp + layout.RowStart(r, p.K, cols, out int kc);
                    nint step = (nint)nr * kc;
                    T* s = pb + (nint)(r - r0) * npad;
                    if (wide)
                        for (int q = 0; q < slivers; q++, s += nr, d += step)
                        {
                            Vector512.Store(Vector512.Load((byte*)s), (byte*)d);
                            Vector512.Store(Vector512.Load((byte*)s + 64), (byte*)d + 64);
                        }
                    else
                        for (int q = 0; q < slivers; q++, s += nr, d += step) Unsafe.CopyBlockUnaligned(d, s, (uint)(nr * sizeof(T)));
                }
            }
        }
    }

    /// <summary>
    /// The transposed twin for backward-weights, whose GEMM reads B = colᵀ ([nb·B, K]: the spatial positions are the
    /// reduction): slivers [sliverLo, sliverHi) of NR column-matrix rows each, unfolded into a per-thread buffer
    /// [NR, nb·B] (L2) and transposed from there into <paramref name="packed"/>, laid out by <paramref name="layout"/> for
    /// that k = nb·B by n = K operand; rows past K are written as zeros.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void UnfoldTransposed<T>(T[] x, int xOff, int imageStride, int nb, in ConvPlan p, in GemmPackedLayout layout, T[] packed,
        int sliverLo, int sliverHi, int ohLo, int ohHi) where T : unmanaged, INumber<T>
    {
        int cols = nb * (ohHi - ohLo) * p.Wo, nr = layout.NR, kcMax = layout.KC;
        long npad = layout.PaddedCols(p.K);
        var buf = RowBuffer<T>.Get(nr * cols); // buf: [NR, cols]
        bool vec = typeof(T) == typeof(float) && nr % 8 == 0 && GemmTranspose.Supported;
        fixed (T* pb = buf, pp = packed)
        {
            for (int sl = sliverLo; sl < sliverHi; sl++)
            {
                int r0 = sl * nr, r1 = Math.Min(p.K, r0 + nr);
                Im2Col.Unfold(x, xOff, imageStride, nb, p, buf, cols, r0, r1, ohLo, ohHi, rowBase: r0);
                if (r1 - r0 < nr) buf.AsSpan((r1 - r0) * cols, (nr - (r1 - r0)) * cols).Clear();
                for (int pc = 0; pc < cols; pc += kcMax)
                {
                    int kc = Math.Min(kcMax, cols - pc);
                    T* dst = pp + pc * npad + (long)r0 * kc; // block pc, sliver sl: kc × NR
                    if (vec) GemmTranspose.Rows((float*)(pb + pc), cols, nr, kc, (float*)dst, nr);
                    else
                        for (int j = 0; j < nr; j++)
                            for (int q = 0; q < kc; q++) dst[(nint)q * nr + j] = pb[(nint)j * cols + pc + q];
                }
            }
        }
    }
}
