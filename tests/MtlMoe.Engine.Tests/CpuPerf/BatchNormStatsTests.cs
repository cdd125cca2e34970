using MtlMoe.Engine;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>Batch-norm training statistics in one sweep (about a shift near the mean) against the two-sweep form and a float64 reference.</summary>
public class BatchNormStatsTests
{
    [TestCase(16, 3, 14, 14, 100.0, 1.0)]  // large mean offset: a naive Σx² − (Σx)²/m would lose every digit in float32
    [TestCase(4, 5, 7, 9, -30.0, 0.01)]    // plane 63: not a multiple of the vector width; tiny spread
    [TestCase(9, 2, 1, 1, 5.0, 2.0)]       // 1×1 planes
    public void OneSweepMatchesTwoSweepsAndReference(int n, int c, int h, int w, double mean, double std)
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var rng = new Rng(71);
            using var z = Tensor.RandN([n, c, h, w], rng, dtype);
            using var zs = Ops.MulScalar(z, std);
            using var x = Ops.AddScalar(zs, mean);
            var xd = x.ToDoubleArray();
            (double[] Y, double[] Rm, double[] Rv) Run(bool onePass) => Cpu.With(onePass ? Cpu.Defaults : Cpu.Defaults.Disable("bn-stats-one-pass"), () =>
            {
                using var rm = Tensor.Zeros([c], dtype); using var rv = Tensor.Ones([c], dtype);
                using var y = Ops.BatchNorm2d(x, null, null, rm, rv, training: true, momentum: 1.0);
                return (y.ToDoubleArray(), rm.ToDoubleArray(), rv.ToDoubleArray());
            });
            var one = Run(true);
            var two = Run(false);
            int plane = h * w; long m = (long)n * plane;
            for (int ch = 0; ch < c; ch++)
            {
                double s = 0;
                for (int i = 0; i < n; i++) for (int k = 0; k < plane; k++) s += xd[(i * c + ch) * plane + k];
                double mu = s / m, ss = 0;
                for (int i = 0; i < n; i++) for (int k = 0; k < plane; k++) { double d = xd[(i * c + ch) * plane + k] - mu; ss += d * d; }
                double unbiased = ss / (m - 1);
                double tol = dtype == DType.Float64 ? 1e-12 : 1e-6;
                Assert.That(one.Rm[ch], Is.EqualTo(mu).Within(tol * (Math.Abs(mu) + std)), $"{dtype} ch {ch}: mean vs float64 reference");
                Assert.That(one.Rm[ch], Is.EqualTo(two.Rm[ch]).Within(tol * (Math.Abs(mu) + std)), $"{dtype} ch {ch}: mean vs two sweeps");
                Assert.That(Math.Abs(one.Rv[ch] - unbiased) / unbiased, Is.LessThan(tol), $"{dtype} ch {ch}: variance vs float64 reference");
                Assert.That(Math.Abs(one.Rv[ch] - two.Rv[ch]) / two.Rv[ch], Is.LessThan(tol), $"{dtype} ch {ch}: variance vs two sweeps");
            }
            double ytol = dtype == DType.Float64 ? 1e-9 : 2e-5 * Math.Max(1, Math.Abs(mean) / std / 10);
            Assert.That(one.Y, Is.EqualTo(two.Y).Within(ytol), $"{dtype}: y");
        }
    }
}

/// <summary>The one-sweep statistics when the channel's first values (its shift) sit far from the mean.</summary>
public class BatchNormStatsShiftTests
{
    [Test]
    public void FarShiftStaysAccurate() => Cpu.With(Cpu.Defaults, () => // the one-sweep statistics, whatever the environment says
    {
        int n = 8, c = 2, plane = 100;
        var rng = new Rng(9);
        using var z = Tensor.RandN([n, c, 10, 10], rng, DType.Float32);
        var data = z.ToArray<float>().Select(v => 100f + v).ToArray();
        for (int ch = 0; ch < c; ch++) for (int k = 0; k < 16; k++) data[ch * plane + k] = 100f + 20f; // 20 std above
        using var x = Tensor.FromArray(data, [n, c, 10, 10]);
        var xd = data.Select(v => (double)v).ToArray();
        using var rm = Tensor.Zeros([c]); using var rv = Tensor.Ones([c]);
        using var y = Ops.BatchNorm2d(x, null, null, rm, rv, training: true, momentum: 1.0);
        for (int ch = 0; ch < c; ch++)
        {
            var vals = Enumerable.Range(0, n).SelectMany(i => xd.Skip((i * c + ch) * plane).Take(plane)).ToArray();
            double mu = vals.Average(), unbiased = vals.Sum(v => (v - mu) * (v - mu)) / (vals.Length - 1);
            Assert.That(Math.Abs(rv.ToDoubleArray()[ch] - unbiased) / unbiased, Is.LessThan(1e-6), $"ch {ch}: variance");
            Assert.That(rm.ToDoubleArray()[ch], Is.EqualTo(mu).Within(1e-6 * mu), $"ch {ch}: mean");
        }
    });
}
