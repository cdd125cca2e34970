using MtlMoe.Engine;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Tests.NnOptim;

/// <summary>The fused optimizer primitives give exactly what the same formula composed from ops gives.</summary>
public class FusedUpdateTests
{
    private static Tensor R(int n, ulong seed, DType dtype) => Tensor.Rand([n], new Rng(seed), -1, 1, dtype);
    private static Tensor S(double v, DType dtype) => Tensor.Scalar(v, dtype);

    [TestCase(DType.Float64, false)]
    [TestCase(DType.Float64, true)]
    [TestCase(DType.Float32, false)]
    [TestCase(DType.Float32, true)]
    public void SgdEqualsComposition(DType dtype, bool nesterov)
    {
        const int n = 1003; // several vectors, a tail, and more than one thread chunk is not needed for exactness
        double lr = 0.05, mu = 0.9, damp = nesterov ? 0 : 0.3, wd = 0.01;
        using var p = R(n, 1, dtype); using var g = R(n, 2, dtype); using var buf = R(n, 3, dtype);
        // Composition: d = g + wd·p; buf = buf·μ + (1 − damp)·d; d = d + μ·buf or buf; p = p − lr·d.
        using var wdp = Ops.MulScalar(p, wd); using var d = Ops.Add(g, wdp);
        using var bm = Ops.MulScalar(buf, mu); using var dd = Ops.MulScalar(d, 1 - damp); using var nb = Ops.Add(bm, dd);
        using var mb = Ops.MulScalar(nb, mu); using var step = nesterov ? Ops.Add(d, mb) : nb.Clone();
        using var ls = Ops.MulScalar(step, lr); using var np = Ops.Sub(p, ls);

        new CpuBackend().SgdUpdate(p.StorageView, g.StorageView, buf.StorageView, lr, mu, damp, wd, nesterov, initBuffer: false);
        Assert.That(p.ToDoubleArray(), Is.EqualTo(np.ToDoubleArray()));
        Assert.That(buf.ToDoubleArray(), Is.EqualTo(nb.ToDoubleArray()));
    }

    [Test]
    public void SgdFirstStepInitialisesTheBuffer()
    {
        using var p = R(21, 1, DType.Float64); using var g = R(21, 2, DType.Float64); using var buf = Tensor.Full([21], 99, DType.Float64);
        using var d = Ops.MulScalar(g, 0.1); using var np = Ops.Sub(p, d);
        new CpuBackend().SgdUpdate(p.StorageView, g.StorageView, buf.StorageView, 0.1, 0.9, 0.5, 0, false, initBuffer: true);
        Assert.That(buf.ToDoubleArray(), Is.EqualTo(g.ToDoubleArray()));
        Assert.That(p.ToDoubleArray(), Is.EqualTo(np.ToDoubleArray()));
    }

    [TestCase(DType.Float64)]
    [TestCase(DType.Float32)]
    public void AdamWEqualsComposition(DType dtype)
    {
        const int n = 1003;
        double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.05;
        long t = 3;
        double bc1 = 1 - Math.Pow(b1, t), bc2 = 1 - Math.Pow(b2, t);
        using var p = R(n, 4, dtype); using var g = R(n, 5, dtype); using var m = R(n, 6, dtype);
        using var v0 = R(n, 7, dtype); using var v = Ops.Abs(v0);
        // Composition in the kernel's order.
        using var pd = Ops.MulScalar(p, 1 - lr * wd);
        using var diff = Ops.Sub(g, m); using var wdiff = Ops.MulScalar(diff, 1 - b1); using var nm = Ops.Add(m, wdiff);
        using var vb = Ops.MulScalar(v, b2); using var gs = Ops.MulScalar(g, 1 - b2); using var gg = Ops.Mul(gs, g); using var nv = Ops.Add(vb, gg);
        using var sq = Ops.Sqrt(nv); using var bc2s = S(Math.Sqrt(bc2), dtype); using var q = Ops.Div(sq, bc2s); using var denom = Ops.AddScalar(q, eps);
        using var sm = Ops.MulScalar(nm, lr / bc1); using var upd = Ops.Div(sm, denom); using var np = Ops.Sub(pd, upd);

        new CpuBackend().AdamWUpdate(p.StorageView, g.StorageView, m.StorageView, v.StorageView, lr, b1, b2, eps, wd, bc1, bc2);
        Assert.That(m.ToDoubleArray(), Is.EqualTo(nm.ToDoubleArray()));
        Assert.That(v.ToDoubleArray(), Is.EqualTo(nv.ToDoubleArray()));
        Assert.That(p.ToDoubleArray(), Is.EqualTo(np.ToDoubleArray()));
    }

    [Test]
    public void MismatchedOperandsThrow()
    {
        using var p = Tensor.Zeros([4]); using var g = Tensor.Zeros([5]);
        var ex = Assert.Throws<ShapeException>(() => new CpuBackend().SgdUpdate(p.StorageView, g.StorageView, null, 0.1, 0, 0, 0, false, false));
        Assert.That(ex!.Message, Does.Contain("sgd_update").And.Contain("[5]").And.Contain("[4]"));
    }
}
