using MtlMoe.Engine;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.IndexLoss;

/// <summary>Shapes big enough that the CPU kernels split rows over threads.</summary>
public class IndexLargeTests
{
    [Test]
    public void TopKMatchesStableSortOnManyRowsWithTies()
    {
        const int rows = 1500, n = 40, k = 7;
        var rng = new Rng(601);
        var data = new double[rows * n];
        for (int i = 0; i < data.Length; i++) data[i] = rng.NextInt(10); // many ties
        using var x = Tensor.FromArray(data, [rows, n]);
        var (v, idx) = Ops.TopK(x, k);
        var vs = v.ToDoubleArray(); var ids = idx.ToArray<long>();
        for (int r = 0; r < rows; r++)
        {
            // OrderByDescending is stable: equal values keep ascending index order.
            var expect = Enumerable.Range(0, n).OrderByDescending(i => data[r * n + i]).Take(k).ToArray();
            for (int j = 0; j < k; j++)
            {
                Assert.That(ids[r * k + j], Is.EqualTo(expect[j]), $"row {r} rank {j}");
                Assert.That(vs[r * k + j], Is.EqualTo(data[r * n + expect[j]]));
            }
        }
    }

    [Test]
    public void ScatterAddIsBitIdenticalAcrossThreadCounts()
    {
        const int rows = 600, n = 200, size = 16;
        var rng = new Rng(602);
        var idx = new long[rows * n];
        for (int i = 0; i < idx.Length; i++) idx[i] = rng.NextInt(size);
        using var index = Tensor.FromArray(idx, [rows, n]);
        using var src = Tensor.RandN([rows, n], new Rng(603));
        using var x = Tensor.Zeros([rows, size]);
        float[] Run(int threads) => Cpu.With(Cpu.Defaults with { Threads = threads }, () =>
        {
            using var y = Ops.ScatterAdd(x, 1, index, src);
            return y.ToArray<float>();
        });
        var one = Run(1);
        var many = Run(Math.Max(2, Environment.ProcessorCount));
        Assert.That(many, Is.EqualTo(one));
        // Row sums are preserved (up to float32 rounding).
        var s = src.ToDoubleArray();
        Assert.That(one.Take(size).Sum(f => (double)f), Is.EqualTo(s.Take(n).Sum()).Within(1e-3));
    }

    [Test]
    public void SoftmaxOnManyRowsSumsToOne()
    {
        using var x = GradCheck.Rand([300, 257], 604, -20, 20);
        using var xf = x.To(DType.Float32);
        using var xt = xf.T; // [257, 300]; softmax over dim 0 walks strided columns
        using var y = Ops.Softmax(xt, 0);
        using var s = Ops.Sum(y, [0]);
        Assert.That(s.ToDoubleArray(), Is.All.EqualTo(1).Within(1e-5));
    }
}
