using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>The fused ReLU backward against the composed reference (mask · dy), on the vector and scalar paths.</summary>
public class ReluBackwardTests
{
    // A backend that only has the interface's default (composed) ReluBackward.
    private static Storage Composed(StorageView dy, StorageView y)
    {
        IBackend be = new CpuBackend();
        var mask = be.Unary(UnaryOp.GtScalar, y, 0);
        try { return be.Binary(BinaryOp.Mul, dy, StorageView.Dense(mask, y.Shape)); }
        finally { mask.Release(); }
    }

    [TestCase(1, false)]
    [TestCase(15, false)]
    [TestCase(16, false)]
    [TestCase(1037, false)]
    [TestCase(70001, false)]
    [TestCase(1037, true)]
    [TestCase(70001, true)]
    public void MatchesComposed(int n, bool scalar)
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            using var x = Tensor.Rand([n], new Rng((ulong)n), -1, 1, dtype);
            using var y = Ops.Relu(x);
            using var dy = Tensor.Rand([n], new Rng((ulong)n + 1), -1, 1, dtype);
            var cpu = new CpuBackend(scalar ? Cpu.Defaults.Disable("vector-elementwise") : Cpu.Defaults);
            using var got = Tensor.FromStorage(cpu.ReluBackward(dy.StorageView, y.StorageView), [n]);
            using var want = Tensor.FromStorage(Composed(dy.StorageView, y.StorageView), [n]);
            Assert.That(got.ToDoubleArray(), Is.EqualTo(want.ToDoubleArray()), dtype.Name());
            // Not trivially zero or trivially dy: both kinds of element occur.
            var g = got.ToDoubleArray();
            if (n > 100) Assert.That(g.Count(v => v == 0), Is.InRange(n / 4, 3 * n / 4));
        }
    }

    [Test]
    public void NonContiguousOperandsMatchComposed()
    {
        using var x = Tensor.Rand([7, 9], new Rng(3), -1, 1, DType.Float64);
        using var y = Ops.Relu(x);
        using var yt = y.T;
        using var dyStore = Tensor.Rand([7, 9], new Rng(4), -1, 1, DType.Float64);
        using var dy = dyStore.T; // [9, 7], strided
        using var got = Tensor.FromStorage(new CpuBackend().ReluBackward(dy.StorageView, yt.StorageView), [9, 7]);
        using var want = Tensor.FromStorage(Composed(dy.StorageView, yt.StorageView), [9, 7]);
        Assert.That(got.ToDoubleArray(), Is.EqualTo(want.ToDoubleArray()));
    }

    [Test]
    public void ReluGradientChecks()
    {
        // Values kept away from 0, where ReLU has no derivative.
        GradCheck.Assert("relu", x => Ops.Relu(x[0].T), Shifted(GradCheck.Rand([4, 6], 31)));
        GradCheck.Assert("relu", x => Ops.Relu(x[0]), Shifted(GradCheck.Rand([37], 32)));
    }

    private static Tensor Shifted(Tensor t)
    {
        var v = t.ToDoubleArray().Select(a => a >= 0 ? a + 0.1 : a - 0.1).ToArray();
        var r = Tensor.FromArray(v, t.Shape).RequireGrad();
        t.Dispose();
        return r;
    }
}
