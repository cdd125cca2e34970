using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>Which micro-kernel family a GEMM runs on.</summary>
public enum GemmPath
{
    /// <summary>Vector512 + AVX-512F FMA.</summary>
    Avx512,
    /// <summary>Vector256 + AVX2/FMA3.</summary>
    Avx2,
    /// <summary>Plain scalar code.</summary>
    Scalar,
}

/// <summary>
/// General matrix product C = α·op(A)·op(B) + β·C on row-major spans (op = transpose when asked).
/// A is m×k (k×m when transposed) with leading dimension lda; likewise B (k×n) and C (m×n).
/// float32/float64 run a packed, cache-blocked, multi-threaded kernel (AVX-512, AVX2 or scalar,
/// chosen at run time); other element types use <see cref="Reference{T}"/>.
/// </summary>
public static unsafe class CpuGemm
{
    /// <summary>Whether this CPU can run <paramref name="path"/>.</summary>
    public static bool IsSupported(GemmPath path) => path switch
    {
        GemmPath.Avx512 => Avx512F.IsSupported,
        GemmPath.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };

    /// <summary>The micro-kernel family a GEMM under <paramref name="options"/> runs on (<see cref="CpuBackendOptions.GemmKernel"/>, else the best this CPU has).</summary>
    public static GemmPath PathFor(CpuBackendOptions options)
    {
        if (options.GemmKernel is { } f)
            return IsSupported(f) ? f : throw new PlatformNotSupportedException($"gemm: forced path {f} is not supported on this CPU");
        return IsSupported(GemmPath.Avx512) ? GemmPath.Avx512 : IsSupported(GemmPath.Avx2) ? GemmPath.Avx2 : GemmPath.Scalar;
    }

    /// <summary>
    /// C[m×n] = α·op(A)·op(B) + β·C on the threads and micro-kernel <paramref name="options"/> give. When β = 0, C is not
    /// read (it may hold garbage).
    /// </summary>
    public static void Gemm<T>(CpuBackendOptions options, bool transA, bool transB, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
        where T : unmanaged, INumber<T>
        => Gemm(options, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, options.Threads);

    /// <summary>As above on at most <paramref name="threads"/> threads (1: the calling thread only, for callers that are already parallel).</summary>
    internal static void Gemm<T>(CpuBackendOptions options, bool transA, bool transB, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc, int threads)
        where T : unmanaged, INumber<T>
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"gemm: negative size m={m} n={n} k={k}");
        if (m == 0 || n == 0) return;
        CheckOperand("A", transA, m, k, a.Length, lda);
        CheckOperand("C", false, m, n, c.Length, ldc);
        if (k == 0 || alpha == T.Zero)
        {
            // Nothing to multiply: C = β·C.
            for (int i = 0; i < m; i++)
            {
                var row = c.Slice(i * ldc, n);
                if (beta == T.Zero) row.Clear();
                else for (int j = 0; j < n; j++) row[j] *= beta;
            }
            return;
        }
        CheckOperand("B", transB, k, n, b.Length, ldb);
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
        {
            Reference(options, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        fixed (T* pa = a, pb = b, pc = c)
        {
            switch (PathFor(options))
            {
                case GemmPath.Avx512:
                    GemmDriver<T, Avx512Kernel<T>>.Run(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads, options);
                    break;
                case GemmPath.Avx2:
                    GemmDriver<T, Avx2Kernel<T>>.Run(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads, options);
                    break;
                default:
                    GemmDriver<T, ScalarKernel<T>>.Run(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads, options);
                    break;
            }
        }
    }

    /// <summary>The packed-B layout the micro-kernel of the next call reads (float32/float64 only).</summary>
    internal static GemmPackedLayout PackedLayout<T>(CpuBackendOptions options) where T : unmanaged, INumber<T>
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double)) throw new NotSupportedException($"gemm: no packed layout for {typeof(T).Name}");
        var path = PathFor(options);
        return path switch
        {
            GemmPath.Avx512 => new(path, Avx512Kernel<T>.NR, Avx512Kernel<T>.KC),
            GemmPath.Avx2 => new(path, Avx2Kernel<T>.NR, Avx2Kernel<T>.KC),
            _ => new(path, ScalarKernel<T>.NR, ScalarKernel<T>.KC),
        };
    }

    /// <summary>
    /// C[m×n] = α·op(A)·B + β·C where B (k×n) was written in <paramref name="layout"/> (see <see cref="GemmPackedLayout"/>)
    /// by the caller, e.g. straight from a conv's unfold, so the driver skips its B packing pass.
    /// </summary>
    internal static void GemmPacked<T>(CpuBackendOptions options, in GemmPackedLayout layout, bool transA, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> bPacked, T beta, Span<T> c, int ldc, int threads)
        where T : unmanaged, INumber<T>
    {
        if (m <= 0 || n <= 0 || k <= 0) throw new ArgumentException($"gemm (packed B): sizes must be positive, got m={m} n={n} k={k}");
        CheckOperand("A", transA, m, k, a.Length, lda);
        CheckOperand("C", false, m, n, c.Length, ldc);
        if (bPacked.Length < layout.Length(k, n))
            throw new ArgumentException($"gemm (packed B): B holds {bPacked.Length} elements, the packed {k}×{n} needs {layout.Length(k, n)}");
        if (layout != PackedLayout<T>(options))
            throw new InvalidOperationException($"gemm (packed B): B was packed for {layout.Path} (NR {layout.NR}, KC {layout.KC}), the active kernel is {PathFor(options)}");
        fixed (T* pa = a, pb = bPacked, pc = c)
        {
            switch (layout.Path)
            {
                case GemmPath.Avx512: GemmDriver<T, Avx512Kernel<T>>.RunPacked(transA, m, n, k, alpha, pa, lda, pb, beta, pc, ldc, threads, options); break;
                case GemmPath.Avx2: GemmDriver<T, Avx2Kernel<T>>.RunPacked(transA, m, n, k, alpha, pa, lda, pb, beta, pc, ldc, threads, options); break;
                default: GemmDriver<T, ScalarKernel<T>>.RunPacked(transA, m, n, k, alpha, pa, lda, pb, beta, pc, ldc, threads, options); break;
            }
        }
    }

    // The fast paths use raw pointers, so every operand's extent is checked up front.
    private static void CheckOperand(string name, bool trans, int rows, int cols, int length, int ld)
    {
        int r = trans ? cols : rows, w = trans ? rows : cols;   // stored shape r×w
        if (ld < w) throw new ArgumentException($"gemm: leading dimension of {name} is {ld}, needs ≥ {w} (stored {r}×{w})");
        long need = (long)(r - 1) * ld + w;
        if (length < need) throw new ArgumentException($"gemm: {name} span has {length} elements, needs {need} (stored {r}×{w}, ld {ld})");
    }

    /// <summary>
    /// The plain reference product (dense copies of op(A) and op(B), then a vectorised axpy per row of C,
    /// parallel over rows). Slow; kept to test the fast paths against.
    /// </summary>
    internal static void Reference<T>(CpuBackendOptions options, bool transA, bool transB, int m, int n, int k, T alpha,
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
        StridedIter.ParallelChunks(options, m, (long)n * k, (lo, hi) =>
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
