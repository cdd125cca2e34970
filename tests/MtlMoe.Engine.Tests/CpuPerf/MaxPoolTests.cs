using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>The pointer max-pool kernel against a direct reference, including NaN and −∞ and strided input.</summary>
public class MaxPoolTests
{
    private static (double[] Y, long[] Ix) Reference(double[] x, int planes, int h, int w, Pool2dGeometry g)
    {
        int ho = g.OutH(h), wo = g.OutW(w);
        var y = new double[planes * ho * wo]; var ix = new long[y.Length];
        for (int p = 0; p < planes; p++)
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++)
                {
                    double best = double.NegativeInfinity; long at = -1;
                    for (int i = 0; i < g.KernelH; i++)
                        for (int j = 0; j < g.KernelW; j++)
                        {
                            int ih = oh * g.StrideH - g.PadH + i, iw = ow * g.StrideW - g.PadW + j;
                            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                            double v = x[(p * h + ih) * w + iw];
                            if (at < 0) at = ih * w + iw;
                            if (v > best || (double.IsNaN(v) && !double.IsNaN(best))) { best = v; at = ih * w + iw; }
                        }
                    y[(p * ho + oh) * wo + ow] = best; ix[(p * ho + oh) * wo + ow] = at;
                }
        return (y, ix);
    }

    [TestCase(3, 2, 1, 13, 11)]
    [TestCase(2, 2, 0, 8, 9)]
    [TestCase(3, 1, 1, 5, 7)]
    public void MatchesReference(int k, int s, int pad, int h, int w)
    {
        var g = Pool2dGeometry.Square(k, s, pad);
        var rng = new Rng(9);
        // stored [N, H, C, W], viewed [N, C, H, W]: a strided input.
        using var stored0 = Tensor.Rand([2, h, 3, w], rng, -1, 1, DType.Float64);
        var vals = stored0.ToDoubleArray();
        vals[5] = double.NaN; vals[17] = double.NegativeInfinity; vals[40] = double.NaN; vals[41] = 5;
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            using var stored1 = Tensor.FromArray(vals, [2, h, 3, w]);
            using var stored = stored1.To(dtype);
            using var x = stored.Permute(0, 2, 1, 3);
            var (ref_y, ref_ix) = Reference(x.ToDoubleArray(), 6, h, w, g);
            var (ys, ixs) = new CpuBackend().MaxPool2dForward(x.StorageView, g);
            using var yt = Tensor.FromStorage(ys, [2, 3, g.OutH(h), g.OutW(w)]);
            using var it = Tensor.FromStorage(ixs, yt.Shape);
            Assert.That(yt.ToDoubleArray(), Is.EqualTo(dtype == DType.Float32 ? ref_y.Select(v => (double)(float)v).ToArray() : ref_y), dtype.Name());
            Assert.That(it.ToArray<long>(), Is.EqualTo(ref_ix), dtype.Name());
        }
    }

    // Vector kernel vs scalar kernel on rows wider than one 16-wide step (and a partial last step), many ties
    // (values rounded to a few levels, zeros as after a ReLU), NaN and −∞ scattered: values and indices identical.
    [TestCase(3, 3, 2, 2, 1, 1, 57, 45)]
    [TestCase(3, 3, 1, 1, 1, 1, 19, 37)]
    [TestCase(2, 2, 2, 2, 0, 0, 16, 64)]
    [TestCase(3, 2, 2, 1, 1, 0, 11, 35)]
    [TestCase(1, 1, 2, 2, 0, 0, 9, 33)]
    [TestCase(3, 3, 3, 3, 1, 1, 20, 40)] // stride 3: the scalar kernel either way
    public void VectorKernelMatchesScalar(int kh, int kw, int sh, int sw, int ph, int pw, int h, int w)
    {
        var g = new Pool2dGeometry(kh, kw, sh, sw, ph, pw);
        var rng = new Rng(31);
        using var r = Tensor.Rand([2, 3, h, w], rng, -1, 1);
        var vals = r.ToFloatArray();
        for (int i = 0; i < vals.Length; i++) vals[i] = MathF.Max(0, MathF.Round(vals[i] * 3));
        for (int i = 7; i < vals.Length; i += 97) vals[i] = float.NaN;
        for (int i = 11; i < vals.Length; i += 53) vals[i] = float.NegativeInfinity;
        // a plane of −∞ only: indices fall back to each window's first element
        for (int i = 0; i < h * w; i++) vals[h * w + i] = float.NegativeInfinity;
        using var stored = Tensor.FromArray(vals, [2, 3, h, w]);
        (float[], long[]) Run(bool vector)
        {
            var cpu = new CpuBackend(vector ? Cpu.Defaults : Cpu.Defaults.Disable("maxpool-vec"));
            var (ys, ixs) = cpu.MaxPool2dForward(stored.StorageView, g);
            using var yt = Tensor.FromStorage(ys, [2, 3, g.OutH(h), g.OutW(w)]);
            using var it = Tensor.FromStorage(ixs, yt.Shape);
            return (yt.ToFloatArray(), it.ToArray<long>());
        }
        var (vy, vi) = Run(true);
        var (sy, si) = Run(false);
        Assert.That(vy, Is.EqualTo(sy), "values");
        Assert.That(vi, Is.EqualTo(si), "indices");
        var (ry, rix) = Reference(stored.ToDoubleArray(), 6, h, w, g);
        Assert.That(si, Is.EqualTo(rix), "scalar indices vs reference");
        Assert.That(sy.Select(v => (double)v), Is.EqualTo(ry), "scalar values vs reference");
    }
}
