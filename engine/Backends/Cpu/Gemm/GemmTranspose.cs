using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu.Gemm;

/// <summary>In-register 8×8 float transposes for packing (rows of A into MR-interleaved slivers, rows of Bᵀ into NR-wide slivers).</summary>
internal static unsafe class GemmTranspose
{
    /// <summary>Whether <see cref="Transpose8x8"/> can run here.</summary>
    public static bool Supported => Avx.IsSupported;

    /// <summary>dst[p·dstStride + r] = src[r·srcStride + p] for r, p in 0..8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transpose8x8(float* src, nint srcStride, float* dst, nint dstStride)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + srcStride);
        var r2 = Avx.LoadVector256(src + 2 * srcStride); var r3 = Avx.LoadVector256(src + 3 * srcStride);
        var r4 = Avx.LoadVector256(src + 4 * srcStride); var r5 = Avx.LoadVector256(src + 5 * srcStride);
        var r6 = Avx.LoadVector256(src + 6 * srcStride); var r7 = Avx.LoadVector256(src + 7 * srcStride);
        // Interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(s3, s7, 0x31));
    }

    /// <summary>
    /// dst[p·dstStride + r] = src[r·srcStride + p] for r in 0..rows (a multiple of 8), p in 0..cols:
    /// 8×8 blocks, the last cols % 8 columns scalar.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows(float* src, nint srcStride, int rows, int cols, float* dst, nint dstStride)
    {
        int p8 = cols & ~7;
        for (int r = 0; r < rows; r += 8)
        {
            float* s = src + r * srcStride; float* d = dst + r;
            for (int p = 0; p < p8; p += 8) Transpose8x8(s + p, srcStride, d + p * dstStride, dstStride);
            for (int rr = 0; rr < 8; rr++)
                for (int p = p8; p < cols; p++) d[p * dstStride + rr] = s[rr * srcStride + p];
        }
    }

    /// <summary>
    /// dst[q·width + r] = src[r·srcStride + q] for q &lt; cols and r &lt; rows, zero for rows ≤ r &lt; width: the rows of a matrix
    /// into a sliver of <paramref name="width"/> columns (whole groups of 8 rows by <see cref="Rows"/>, the rest scalar).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RowsToSliver(float* src, nint srcStride, int rows, int cols, float* dst, int width)
    {
        int full = Supported ? rows & ~7 : 0;
        if (full > 0) Rows(src, srcStride, full, cols, dst, width);
        if (full == width) return;
        for (int q = 0; q < cols; q++)
        {
            float* d = dst + (nint)q * width;
            for (int r = full; r < rows; r++) d[r] = src[r * srcStride + q];
            for (int r = rows; r < width; r++) d[r] = 0f;
        }
    }
}
