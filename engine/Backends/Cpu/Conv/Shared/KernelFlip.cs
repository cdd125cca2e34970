using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu.Conv.Shared;

/// <summary>
/// The kernel flip behind stride-1 backward-data run as a forward conv on the GEMM paths (the implicit GEMM reads the
/// kernel flipped in place instead): w′[g·Cg + c, o, i, j] = w[g·Og + o, c, kh−1−i, kw−1−j], the taps reversed and the
/// in and out channels swapped per group; float32 kernels of 2..16 taps reverse 16 lanes at a time with AVX-512
/// ("kernel-flip-vec"). Tested element by element against that formula (tests/MtlMoe.Engine.Tests/CpuPerf/KernelFlipTests.cs).
/// </summary>
internal static class KernelFlip
{
    // w′[g·Cg + c, o, i, j] = w[g·Og + o, c, kh−1−i, kw−1−j], blocks of 16 input channels over the threads.
    internal static unsafe void Flip<T>(T[] w, int wo, T[] wf, ConvPlan p) where T : unmanaged
    {
        const int cb = 16;
        int kk = p.Kh * p.Kw, cBlocks = (p.Cg + cb - 1) / cb;
        // float32 kernels of 2..16 taps: lane q of the reversal takes tap kk − 1 − q.
        bool vec = typeof(T) == typeof(float) && p.On(CpuPath.KernelFlipVec) && Avx512F.IsSupported && kk is > 1 and <= 16;
        var reverse = Vector512.Create(kk - 1) - Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        var taps = Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(kk)).AsSingle();
        StridedIter.ParallelChunks(p.Options, (long)p.G * cBlocks, (long)p.Og * cb * kk, (lo, hi) =>
        {
            fixed (T* pw = w, pf = wf)
                for (long item = lo; item < hi; item++)
                {
                    int g = (int)(item / cBlocks), c0 = (int)(item % cBlocks) * cb, c1 = Math.Min(p.Cg, c0 + cb);
                    // 16 × 16 (o, c) tiles: both sides then move runs of 16·kh·kw contiguous values.
                    for (int o0 = 0; o0 < p.Og; o0 += cb)
                    {
                        int o1 = Math.Min(p.Og, o0 + cb);
                        for (int c = c0; c < c1; c++)
                        {
                            T* dst = pf + ((long)(g * p.Cg + c) * p.Og + o0) * kk;
                            T* src = pw + wo + ((long)(g * p.Og + o0) * p.Cg + c) * kk + kk - 1;
                            int ol = o0;
                            if (vec)
                            {
                                // One masked load, a lane reversal and a full 16-lane store per (o, c); each store's spill past its
                                // kk values is overwritten by the next o's, so only stores that end inside this run go this way.
                                float* s0 = (float*)(src - (kk - 1));
                                for (; (o1 - ol) * kk >= 16; ol++, dst += kk, s0 += (long)p.Cg * kk)
                                    Avx512F.PermuteVar16x32(Avx512F.MaskLoad(s0, taps, Vector512<float>.Zero), reverse).Store((float*)dst);
                                src += (long)(ol - o0) * p.Cg * kk;
                            }
                            for (; ol < o1; ol++, dst += kk, src += (long)p.Cg * kk)
                                for (int q = 0; q < kk; q++) dst[q] = src[-q];
                        }
                    }
                }
        });
    }
}
