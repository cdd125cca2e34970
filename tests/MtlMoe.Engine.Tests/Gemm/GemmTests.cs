using System.Numerics;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Tests.Gemm;

/// <summary>Every CpuGemm kernel path (forced) against the plain reference, plus determinism and threading.</summary>
public class GemmTests
{
    // (m, n, k): 1s, odd sizes around the tile widths (8/32, 6/16, 4/4), k across the KC=256 boundary,
    // m across MC, n across NC=3072, the skinny shapes of a CNN, narrow C (computed as Cᵀ), and m ≥ 8·MC (blocks of 4·MC
    // rows, the last one partial).
    private static readonly (int m, int n, int k)[] Shapes =
    {
        (1, 1, 1), (1, 7, 17), (7, 1, 33), (17, 33, 7), (33, 65, 100), (65, 17, 257), (100, 257, 65),
        (257, 100, 33), (8, 1000, 300), (300, 8, 100), (64, 40, 600), (9, 3100, 5), (130, 3, 2), (1000, 5, 40), (257, 9, 300),
        (1030, 64, 260),
    };

    private static readonly object[] Cases =
        (from p in new[] { "Avx512", "Avx2", "Scalar" }
         from t in new[] { (false, false), (true, false), (false, true), (true, true) }
         select new object[] { p, t.Item1, t.Item2 }).ToArray();

    // Options that force the micro-kernel family called <paramref name="name"/>.
    internal static CpuBackendOptions Kernel(string name)
    {
        var path = Enum.Parse<GemmPath>(name);
        if (!CpuGemm.IsSupported(path)) Assert.Ignore($"{path} is not supported on this CPU");
        return CpuBackendOptions.Defaults with { GemmKernel = path };
    }

    private static T[] Random<T>(Random rng, long count) where T : INumber<T>
    {
        var x = new T[count];
        for (long i = 0; i < count; i++) x[i] = T.CreateChecked(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>Runs fast and reference GEMM on padded operands; returns max |fast − ref| / max |ref|.</summary>
    private static double Compare<T>(CpuBackendOptions o, bool ta, bool tb, int m, int n, int k, int seed, bool betaZero, int threads)
        where T : unmanaged, INumber<T>, IFloatingPointIeee754<T>
    {
        var rng = new Random(seed);
        // Stored shapes with leading dims larger than needed.
        int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 7;
        var a = Random<T>(rng, (long)(ta ? k : m) * lda);
        var b = Random<T>(rng, (long)(tb ? n : k) * ldb);
        var c0 = Random<T>(rng, (long)m * ldc);
        if (betaZero) Array.Fill(c0, T.NaN);   // β = 0 must not read C
        T alpha = T.CreateChecked(1.5), beta = betaZero ? T.Zero : T.CreateChecked(-0.75);
        var fast = (T[])c0.Clone(); var refc = (T[])c0.Clone();
        CpuGemm.Gemm(o with { Threads = threads }, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, fast, ldc);
        CpuGemm.Reference(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, refc, ldc);
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double f = double.CreateChecked(fast[i * ldc + j]), r = double.CreateChecked(refc[i * ldc + j]);
                if (double.IsNaN(f)) return double.NaN;
                maxDiff = Math.Max(maxDiff, Math.Abs(f - r)); maxRef = Math.Max(maxRef, Math.Abs(r));
            }
        // Padding columns of C beyond n stay untouched.
        for (int i = 0; i < m; i++)
            for (int j = n; j < ldc; j++)
                if (!fast[i * ldc + j].Equals(c0[i * ldc + j])) return double.PositiveInfinity;
        return maxDiff / Math.Max(maxRef, 1e-30);
    }

    [TestCaseSource(nameof(Cases))]
    public void Float32MatchesReference(string path, bool ta, bool tb)
    {
        var o = Kernel(path);
        for (int s = 0; s < Shapes.Length; s++)
        {
            var (m, n, k) = Shapes[s];
            double err = Compare<float>(o, ta, tb, m, n, k, seed: 100 + s, betaZero: s % 3 == 0, threads: 1 + s % 2);
            Assert.That(err, Is.LessThan(2e-6), $"{path} transA={ta} transB={tb} m={m} n={n} k={k}");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Float64MatchesReference(string path, bool ta, bool tb)
    {
        var o = Kernel(path);
        for (int s = 0; s < Shapes.Length; s++)
        {
            var (m, n, k) = Shapes[s];
            double err = Compare<double>(o, ta, tb, m, n, k, seed: 200 + s, betaZero: s % 3 == 1, threads: 1 + s % 2);
            Assert.That(err, Is.LessThan(1e-14), $"{path} transA={ta} transB={tb} m={m} n={n} k={k}");
        }
    }

    [TestCase("Avx512")]
    [TestCase("Avx2")]
    [TestCase("Scalar")]
    public void DeterministicAndIndependentOfThreadCount(string path)
    {
        var o = Kernel(path);
        // Large enough (≥ 4 Mflop) that two threads really split the work; both split directions.
        foreach (var (m, n, k, ta, tb) in new[] { (70, 300, 130, false, true), (300, 70, 300, true, false), (600, 10, 300, false, false) })
        {
            var rng = new Random(7);
            var a = Random<float>(rng, (long)m * k); var b = Random<float>(rng, (long)k * n);
            float[] Run(int threads)
            {
                var c = new float[m * n];
                CpuGemm.Gemm(o with { Threads = threads }, ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, c, n);
                return c;
            }
            var one = Run(1); var two = Run(2); var twoAgain = Run(2);
            Assert.That(two, Is.EqualTo(twoAgain).AsCollection, $"{path} {m}x{n}x{k}: two calls differ");
            Assert.That(two, Is.EqualTo(one).AsCollection, $"{path} {m}x{n}x{k}: 1 vs 2 threads differ");
            var refc = new float[m * n];
            CpuGemm.Reference(o, ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, refc, n);
            for (int i = 0; i < refc.Length; i++) Assert.That(two[i], Is.EqualTo(refc[i]).Within(1e-4f));
        }
    }

    [Test]
    public void ZeroDepthOrZeroAlphaScalesCByBeta()
    {
        var c = new double[] { 1, 2, 3, 4, 5, 6 };
        CpuGemm.Gemm(CpuBackendOptions.Defaults, false, false, 2, 3, 0, 1.0, ReadOnlySpan<double>.Empty, 0, ReadOnlySpan<double>.Empty, 3, 2.0, c, 3);
        Assert.That(c, Is.EqualTo(new double[] { 2, 4, 6, 8, 10, 12 }));
        var a = new double[] { double.NaN, 1 }; var b = new double[] { 1, 1, 1, 1, 1, 1 };
        CpuGemm.Gemm(CpuBackendOptions.Defaults, false, false, 2, 3, 1, 0.0, a, 1, b, 3, 0.5, c, 3);
        Assert.That(c, Is.EqualTo(new double[] { 1, 2, 3, 4, 5, 6 }));
    }

    [Test]
    public void HandComputedProduct()
    {
        // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]; with Aᵀ stored: A = [[1,3],[2,4]]ᵀ.
        var at = new float[] { 1, 3, 2, 4 }; var b = new float[] { 5, 6, 7, 8 }; var c = new float[4];
        CpuGemm.Gemm(CpuBackendOptions.Defaults, true, false, 2, 2, 2, 1f, at, 2, b, 2, 0f, c, 2);
        Assert.That(c, Is.EqualTo(new float[] { 19, 22, 43, 50 }));
    }

    [Test]
    public void ShortSpansAreRejected()
    {
        var a = new float[5]; var b = new float[6]; var c = new float[6];
        var ex = Assert.Throws<ArgumentException>(() => CpuGemm.Gemm(CpuBackendOptions.Defaults, false, false, 2, 3, 3, 1f, a, 3, b, 3, 0f, c, 3));
        Assert.That(ex!.Message, Does.Contain("gemm").And.Contain("A span has 5"));
        ex = Assert.Throws<ArgumentException>(() => CpuGemm.Gemm(CpuBackendOptions.Defaults, false, false, 2, 3, 2, 1f, a, 1, b, 3, 0f, c, 3));
        Assert.That(ex!.Message, Does.Contain("leading dimension of A"));
    }
}
