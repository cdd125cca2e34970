using System.Numerics;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Tests.Gemm;

/// <summary>
/// GEMM with a caller-packed B (<see cref="CpuGemm.GemmPacked{T}"/>): B is packed here from the layout's documented
/// element formula, independently of the engine's packers, and the product is checked against the plain reference on
/// every kernel path, both element types, transposed A, one and two threads, and both parallel schedules.
/// </summary>
public class GemmPackedTests
{
    // k across KC = 256 (two and three blocks, a short last one), n off the sliver width, m below and above MC = 128
    // (with two threads: the column-range schedule and the shared-B-block one).
    private static readonly (int m, int n, int k)[] Shapes =
    {
        (1, 1, 1), (7, 33, 17), (64, 200, 300), (130, 70, 513), (17, 1000, 40), (200, 100, 270),
    };

    private static readonly object[] Paths = ["Avx512", "Avx2", "Scalar"];


    /// <summary>B [k, n] (row stride ldb) in the packed layout, straight from the formula in GemmPackedLayout's docs.</summary>
    internal static T[] PackByFormula<T>(T[] b, int ldb, int k, int n, GemmPackedLayout layout) where T : unmanaged, INumber<T>
    {
        int npad = layout.PaddedCols(n);
        var packed = new T[layout.Length(k, n)];
        for (int r = 0; r < k; r++)
        {
            int p0 = r - r % layout.KC, kc = Math.Min(layout.KC, k - p0);
            for (int q = 0; q < npad; q++)
                packed[(long)p0 * npad + (long)(q - q % layout.NR) * kc + (r % layout.KC) * layout.NR + q % layout.NR] =
                    q < n ? b[(long)r * ldb + q] : T.Zero;
        }
        return packed;
    }

    private static double Compare<T>(CpuBackendOptions o, bool ta, int m, int n, int k, int seed, bool betaZero, int threads)
        where T : unmanaged, INumber<T>, IFloatingPointIeee754<T>
    {
        var rng = new Random(seed);
        int lda = (ta ? m : k) + 3, ldb = n + 5, ldc = n + 7;
        T Next() => T.CreateChecked(rng.NextDouble() * 2 - 1);
        var a = new T[(long)(ta ? k : m) * lda]; for (long i = 0; i < a.Length; i++) a[i] = Next();
        var b = new T[(long)k * ldb]; for (long i = 0; i < b.Length; i++) b[i] = Next();
        var c0 = new T[(long)m * ldc]; for (long i = 0; i < c0.Length; i++) c0[i] = betaZero ? T.NaN : Next(); // β = 0 must not read C
        T alpha = T.CreateChecked(1.25), beta = betaZero ? T.Zero : T.CreateChecked(-0.5);
        var layout = CpuGemm.PackedLayout<T>(o);
        var fast = (T[])c0.Clone(); var refc = (T[])c0.Clone();
        CpuGemm.GemmPacked(o, layout, ta, m, n, k, alpha, a, lda, PackByFormula(b, ldb, k, n, layout), beta, fast, ldc, threads);
        CpuGemm.Reference(o, ta, false, m, n, k, alpha, a, lda, b, ldb, beta, refc, ldc);
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double f = double.CreateChecked(fast[i * ldc + j]), r = double.CreateChecked(refc[i * ldc + j]);
                if (double.IsNaN(f)) return double.NaN;
                maxDiff = Math.Max(maxDiff, Math.Abs(f - r)); maxRef = Math.Max(maxRef, Math.Abs(r));
            }
            for (int j = n; j < ldc; j++) // columns past n are not C's: untouched
                if (!fast[i * ldc + j].Equals(c0[i * ldc + j])) return double.PositiveInfinity;
        }
        return maxDiff / Math.Max(maxRef, 1e-30);
    }

    [TestCaseSource(nameof(Paths))]
    public void Float32MatchesReference(string path)
    {
        var o = GemmTests.Kernel(path);
        for (int s = 0; s < Shapes.Length; s++)
            foreach (bool ta in new[] { false, true })
            {
                var (m, n, k) = Shapes[s];
                double err = Compare<float>(o, ta, m, n, k, seed: 300 + s, betaZero: s % 2 == 0, threads: ta ? 2 : 1 + s % 2);
                Assert.That(err, Is.LessThan(2e-6), $"{path} transA={ta} m={m} n={n} k={k}");
            }
    }

    [TestCaseSource(nameof(Paths))]
    public void Float64MatchesReference(string path)
    {
        var o = GemmTests.Kernel(path);
        for (int s = 0; s < Shapes.Length; s++)
            foreach (bool ta in new[] { false, true })
            {
                var (m, n, k) = Shapes[s];
                double err = Compare<double>(o, ta, m, n, k, seed: 400 + s, betaZero: s % 2 == 1, threads: ta ? 1 + s % 2 : 2);
                Assert.That(err, Is.LessThan(1e-14), $"{path} transA={ta} m={m} n={n} k={k}");
            }
    }

    [Test]
    public void SameBitsAsTheDriverPackingBOnAnySchedule()
    {
        // Same kernel steps either way: packing is only a copy, so the two results are identical.
        var rng = new Random(9);
        int m = 140, n = 150, k = 300;
        var a = new float[m * k]; var b = new float[k * n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() - 0.5);
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() - 0.5);
        var o = CpuBackendOptions.Defaults;
        var layout = CpuGemm.PackedLayout<float>(o);
        var bPacked = PackByFormula(b, n, k, n, layout);
        var plain = new float[m * n];
        CpuGemm.Gemm(o, false, false, m, n, k, 1f, a, k, b, n, 0f, plain, n, threads: 2);
        // Any thread count, and either parallel schedule of the packed product (m > MC: more than one row block).
        foreach (bool alone in new[] { true, false })
            foreach (int threads in new[] { 1, 2, 3 })
            {
                var schedule = alone ? o : o.Disable("gemm-packed-blocks-alone");
                var packed = new float[m * n];
                CpuGemm.GemmPacked(schedule, layout, false, m, n, k, 1f, a, k, bPacked, 0f, packed, n, threads);
                Assert.That(packed, Is.EqualTo(plain), $"blocks alone: {alone}, {threads} threads");
            }
    }

    [Test]
    public void ShortPackedBAndAForeignLayoutAreRejected()
    {
        var o = CpuBackendOptions.Defaults;
        var layout = CpuGemm.PackedLayout<float>(o);
        var a = new float[4 * 8]; var c = new float[4 * 40];
        var shortB = new float[layout.Length(8, 40) - 1];
        var ex = Assert.Throws<ArgumentException>(() => CpuGemm.GemmPacked(o, layout, false, 4, 40, 8, 1f, a, 8, shortB, 0f, c, 40, 1));
        Assert.That(ex!.Message, Does.Contain("packed 8×40"));
        var foreign = layout with { NR = layout.NR * 2 };
        var b = new float[foreign.Length(8, 40)];
        Assert.Throws<InvalidOperationException>(() => CpuGemm.GemmPacked(o, foreign, false, 4, 40, 8, 1f, a, 8, b, 0f, c, 40, 1));
    }
}
