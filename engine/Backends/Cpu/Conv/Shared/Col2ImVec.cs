using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu.Conv.Shared;

/// <summary>
/// AVX-512 col2im inner step for float32 at column stride 2: d[2q] += src[q] for 16 q at a time, spreading src
/// over the even lanes of two vectors (a lane permute with zeros) and selecting the even lanes back, so the odd
/// elements in between are rewritten unchanged by the same thread. Same result, bit for bit, as the scalar loop
/// in <see cref="Im2Col.Fold{T}"/>.
/// </summary>
internal static unsafe class Col2ImVec
{
    private const int L = 16;

    /// <summary>True when <see cref="AddStride2"/> handles a fold of this column stride on this machine.</summary>
    public static bool Applies(in ConvPlan p, int strideW) => p.On(CpuPath.Col2ImVec) && strideW == 2 && Avx512F.IsSupported;

    /// <summary>d[2q] += src[q] for q in [qlo, qhi); touches d only in [2·qlo, 2·qhi − 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddStride2(float* src, float* d, int qlo, int qhi)
    {
        var spreadLo = Vector512.Create(0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16);       // src[k] to lane 2k, 0 to odd lanes
        var spreadHi = Vector512.Create(8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16);
        var even = Vector512.Create(-1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0).AsSingle();
        int q = qlo;
        // Strictly below qhi: the block's last odd element d[2q + 31] then stays before d[2·qhi − 1], inside this
        // row segment (never an element another thread may be folding into).
        for (; q + L < qhi; q += L)
        {
            var s = Vector512.Load(src + q);
            float* p = d + 2 * q;
            var lo = Vector512.Load(p);
            var hi = Vector512.Load(p + L);
            Vector512.ConditionalSelect(even, lo + Avx512F.PermuteVar16x32x2(s, spreadLo, Vector512<float>.Zero), lo).Store(p);
            Vector512.ConditionalSelect(even, hi + Avx512F.PermuteVar16x32x2(s, spreadHi, Vector512<float>.Zero), hi).Store(p + L);
        }
        for (; q < qhi; q++) d[2 * q] += src[q];
    }
}
