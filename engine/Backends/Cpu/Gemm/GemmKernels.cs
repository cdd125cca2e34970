using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MtlMoe.Engine.Backends.Cpu.Gemm;

/// <summary>
/// A register-blocked micro-kernel: C[MR×NR] = α·Σₚ a[p]·b[p] + β·C over packed slivers
/// (a: kc×MR, MR values per p; b: kc×NR, NR values per p). Implemented by structs so that the
/// generic driver is specialised per kernel (no virtual calls in the loops).
/// </summary>
internal unsafe interface IGemmKernel<T> where T : unmanaged, INumber<T>
{
    /// <summary>Rows of the register tile.</summary>
    static abstract int MR { get; }
    /// <summary>Columns of the register tile.</summary>
    static abstract int NR { get; }
    /// <summary>Depth of one packed block (B sliver kc×NR should sit in L1).</summary>
    static abstract int KC { get; }
    /// <summary>Rows of A per packed block (mc×kc should sit in L2); a multiple of MR.</summary>
    static abstract int MC { get; }
    /// <summary>Columns of B per packed block; a multiple of NR.</summary>
    static abstract int NC { get; }
    /// <summary>Full tile; β is ignored (C not read) when <paramref name="betaZero"/>.</summary>
    /// <paramref name="bStride"/> is the distance between successive p in b (NR when packed, ldb when read in place).
    static abstract void Run(int kc, T* a, T* b, nint bStride, T* c, nint ldc, T alpha, T beta, bool betaZero);
}

/// <summary>AVX-512 tile: 8 rows × 2 vectors (8×32 floats, 8×16 doubles); 16 accumulators in zmm registers.</summary>
internal unsafe struct Avx512Kernel<T> : IGemmKernel<T> where T : unmanaged, INumber<T>
{
    public static int MR => 8;
    public static int NR => 2 * Vector512<T>.Count;
    public static int KC => 256;
    public static int MC => 128;
    public static int NC => 3072;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma(Vector512<T> a, Vector512<T> b, Vector512<T> c)
    {
        if (typeof(T) == typeof(float)) return Avx512F.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Avx512F.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        return a * b + c;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(T* c, Vector512<T> x0, Vector512<T> x1, Vector512<T> va, Vector512<T> vb, bool betaZero)
    {
        int w = Vector512<T>.Count;
        if (betaZero)
        {
            Vector512.Store(x0 * va, c);
            Vector512.Store(x1 * va, c + w);
        }
        else
        {
            Vector512.Store(Fma(vb, Vector512.Load(c), x0 * va), c);
            Vector512.Store(Fma(vb, Vector512.Load(c + w), x1 * va), c + w);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, T* a, T* b, nint bStride, T* c, nint ldc, T alpha, T beta, bool betaZero)
    {
        int w = Vector512<T>.Count;
        Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<T> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + w);
            Vector512<T> x;
            x = Vector512.Create(a[0]); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
            x = Vector512.Create(a[1]); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
            x = Vector512.Create(a[2]); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
            x = Vector512.Create(a[3]); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
            x = Vector512.Create(a[4]); c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41);
            x = Vector512.Create(a[5]); c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51);
            x = Vector512.Create(a[6]); c60 = Fma(x, b0, c60); c61 = Fma(x, b1, c61);
            x = Vector512.Create(a[7]); c70 = Fma(x, b0, c70); c71 = Fma(x, b1, c71);
            a += 8; b += bStride;
        }
        var va = Vector512.Create(alpha); var vb = Vector512.Create(beta);
        Store(c, c00, c01, va, vb, betaZero); c += ldc;
        Store(c, c10, c11, va, vb, betaZero); c += ldc;
        Store(c, c20, c21, va, vb, betaZero); c += ldc;
        Store(c, c30, c31, va, vb, betaZero); c += ldc;
        Store(c, c40, c41, va, vb, betaZero); c += ldc;
        Store(c, c50, c51, va, vb, betaZero); c += ldc;
        Store(c, c60, c61, va, vb, betaZero); c += ldc;
        Store(c, c70, c71, va, vb, betaZero);
    }
}

/// <summary>AVX2+FMA tile: 6 rows × 2 vectors (6×16 floats, 6×8 doubles); 12 accumulators in ymm registers.</summary>
internal unsafe struct Avx2Kernel<T> : IGemmKernel<T> where T : unmanaged, INumber<T>
{
    public static int MR => 6;
    public static int NR => 2 * Vector256<T>.Count;
    public static int KC => 256;
    public static int MC => 96;
    public static int NC => 3072;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma3(Vector256<T> a, Vector256<T> b, Vector256<T> c)
    {
        if (typeof(T) == typeof(float)) return Fma.MultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Fma.MultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        return a * b + c;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(T* c, Vector256<T> x0, Vector256<T> x1, Vector256<T> va, Vector256<T> vb, bool betaZero)
    {
        int w = Vector256<T>.Count;
        if (betaZero)
        {
            Vector256.Store(x0 * va, c);
            Vector256.Store(x1 * va, c + w);
        }
        else
        {
            Vector256.Store(Fma3(vb, Vector256.Load(c), x0 * va), c);
            Vector256.Store(Fma3(vb, Vector256.Load(c + w), x1 * va), c + w);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, T* a, T* b, nint bStride, T* c, nint ldc, T alpha, T beta, bool betaZero)
    {
        int w = Vector256<T>.Count;
        Vector256<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + w);
            Vector256<T> x;
            x = Vector256.Create(a[0]); c00 = Fma3(x, b0, c00); c01 = Fma3(x, b1, c01);
            x = Vector256.Create(a[1]); c10 = Fma3(x, b0, c10); c11 = Fma3(x, b1, c11);
            x = Vector256.Create(a[2]); c20 = Fma3(x, b0, c20); c21 = Fma3(x, b1, c21);
            x = Vector256.Create(a[3]); c30 = Fma3(x, b0, c30); c31 = Fma3(x, b1, c31);
            x = Vector256.Create(a[4]); c40 = Fma3(x, b0, c40); c41 = Fma3(x, b1, c41);
            x = Vector256.Create(a[5]); c50 = Fma3(x, b0, c50); c51 = Fma3(x, b1, c51);
            a += 6; b += bStride;
        }
        var va = Vector256.Create(alpha); var vb = Vector256.Create(beta);
        Store(c, c00, c01, va, vb, betaZero); c += ldc;
        Store(c, c10, c11, va, vb, betaZero); c += ldc;
        Store(c, c20, c21, va, vb, betaZero); c += ldc;
        Store(c, c30, c31, va, vb, betaZero); c += ldc;
        Store(c, c40, c41, va, vb, betaZero); c += ldc;
        Store(c, c50, c51, va, vb, betaZero);
    }
}

/// <summary>Portable tile: 4×4 scalars in locals (no intrinsics; used where neither AVX path exists).</summary>
internal unsafe struct ScalarKernel<T> : IGemmKernel<T> where T : unmanaged, INumber<T>
{
    public static int MR => 4;
    public static int NR => 4;
    public static int KC => 256;
    public static int MC => 64;
    public static int NC => 1024;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(T* c, T x0, T x1, T x2, T x3, T alpha, T beta, bool betaZero)
    {
        if (betaZero) { c[0] = alpha * x0; c[1] = alpha * x1; c[2] = alpha * x2; c[3] = alpha * x3; }
        else
        {
            c[0] = alpha * x0 + beta * c[0]; c[1] = alpha * x1 + beta * c[1];
            c[2] = alpha * x2 + beta * c[2]; c[3] = alpha * x3 + beta * c[3];
        }
    }

    public static void Run(int kc, T* a, T* b, nint bStride, T* c, nint ldc, T alpha, T beta, bool betaZero)
    {
        T c00 = T.Zero, c01 = T.Zero, c02 = T.Zero, c03 = T.Zero, c10 = T.Zero, c11 = T.Zero, c12 = T.Zero, c13 = T.Zero;
        T c20 = T.Zero, c21 = T.Zero, c22 = T.Zero, c23 = T.Zero, c30 = T.Zero, c31 = T.Zero, c32 = T.Zero, c33 = T.Zero;
        for (int p = 0; p < kc; p++)
        {
            T b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3], x;
            x = a[0]; c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3;
            x = a[1]; c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3;
            x = a[2]; c20 += x * b0; c21 += x * b1; c22 += x * b2; c23 += x * b3;
            x = a[3]; c30 += x * b0; c31 += x * b1; c32 += x * b2; c33 += x * b3;
            a += 4; b += bStride;
        }
        Store(c, c00, c01, c02, c03, alpha, beta, betaZero); c += ldc;
        Store(c, c10, c11, c12, c13, alpha, beta, betaZero); c += ldc;
        Store(c, c20, c21, c22, c23, alpha, beta, betaZero); c += ldc;
        Store(c, c30, c31, c32, c33, alpha, beta, betaZero);
    }
}
