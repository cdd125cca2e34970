using System.Numerics;
using System.Runtime.InteropServices;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// General matrix product C = α·op(A)·op(B) + β·C on row-major spans (op = transpose when asked).
/// A is m×k (k×m when transposed) with leading dimension lda; likewise B (k×n) and C (m×n).
/// This is the plain reference version: packs rows of B, then vectorised axpy per row of C,
/// parallel over rows of C.
/// </summary>
public static class CpuGemm
{
    /// <summary>C[m×n] = α·op(A)·op(B) + β·C.</summary>
    public static void Gemm<T>(bool transA, bool transB, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
        where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0) return;
        // Dense copies of the operands: rows of op(B) as [k, n] and rows of op(A) as [m, k].
        var bp = new T[(long)k * n];
        for (int p = 0; p < k; p++)
            for (int j = 0; j < n; j++) bp[p * n + j] = transB ? b[j * ldb + p] : b[p * ldb + j];
        var ap = new T[(long)m * k];
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++) ap[i * k + p] = transA ? a[p * lda + i] : a[i * lda + p];
        var cArr = new T[(long)m * n];
        StridedIter.ParallelChunks(m, (long)n * k, (lo, hi) =>
        {
            for (int i = (int)lo; i < hi; i++)
            {
                var row = cArr.AsSpan(i * n, n);
                for (int p = 0; p < k; p++)
                {
                    T av = ap[i * k + p];
                    if (av == T.Zero) continue;
                    Axpy(av, bp.AsSpan(p * n, n), row);
                }
            }
        });
        for (int i = 0; i < m; i++)
        {
            var crow = c.Slice(i * ldc, n);
            var src = cArr.AsSpan(i * n, n);
            if (beta == T.Zero) for (int j = 0; j < n; j++) crow[j] = alpha * src[j];
            else for (int j = 0; j < n; j++) crow[j] = alpha * src[j] + beta * crow[j];
        }
    }

    private static void Axpy<T>(T a, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, INumber<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var va = new Vector<T>(a);
            var xv = MemoryMarshal.Cast<T, Vector<T>>(x);
            var yv = MemoryMarshal.Cast<T, Vector<T>>(y);
            for (int v = 0; v < xv.Length; v++) yv[v] += va * xv[v];
            i = xv.Length * Vector<T>.Count;
        }
        for (; i < x.Length; i++) y[i] += a * x[i];
    }
}
