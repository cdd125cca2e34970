using MtlMoe.Engine;
using MtlMoe.Engine.Backends;

namespace MtlMoe.Tests.Amp;

/// <summary>
/// The CPU backend's bf16 twins (the reference the CUDA bf16 kernels are tested against): each primitive on bf16 storage
/// equals "widen the operands → the float32 primitive → round the activations once", bit for bit, keeps float32 where the
/// kernels do (reductions, batch-norm statistics and parameter gradients, gate gradients), and a few are also checked
/// against references written here from scratch.
/// </summary>
public class Bf16TwinTests
{
    static IBackend Be => BackendRegistry.Cpu;

    /// <summary>Seeded normal values rounded to bf16, as a bf16 tensor.</summary>
    static Tensor Bf(int[] shape, int seed, double scale = 1)
    {
        using var f = Tensor.RandN(shape, new Rng((ulong)seed));
        using var s = Ops.MulScalar(f, scale);
        return s.To(DType.BFloat16);
    }

    static Tensor F32(Tensor bf16) => bf16.To(DType.Float32);

    static ushort[] Bits(Tensor t) => t.ToArray<BFloat16>().Select(b => b.Bits).ToArray();

    static ushort[] RoundedBits(float[] f) => BFloat16Convert.FromFloat(f).Select(b => b.Bits).ToArray();

    /// <summary>The bf16 result equals the float32 reference rounded once, bit for bit.</summary>
    static void AssertRounded(string what, Storage bf16, Storage f32, int[] shape)
    {
        using var a = Tensor.FromStorage(bf16, shape);
        using var r = Tensor.FromStorage(f32, shape);
        Assert.That(a.DType, Is.EqualTo(DType.BFloat16), $"{what}: result dtype");
        Assert.That(r.DType, Is.EqualTo(DType.Float32), $"{what}: reference dtype");
        Assert.That(Bits(a), Is.EqualTo(RoundedBits(r.ToArray<float>())), $"{what}: not the float32 result rounded once");
    }

    /// <summary>A float32 result of a bf16 call equals the float32 reference exactly.</summary>
    static void AssertSameFloat32(string what, Storage got, Storage f32, int[] shape)
    {
        using var a = Tensor.FromStorage(got, shape);
        using var r = Tensor.FromStorage(f32, shape);
        Assert.That(a.DType, Is.EqualTo(DType.Float32), $"{what}: stays float32");
        Assert.That(a.ToArray<float>().Select(BitConverter.SingleToInt32Bits), Is.EqualTo(r.ToArray<float>().Select(BitConverter.SingleToInt32Bits)), what);
    }

    [Test]
    public void StorageCopyFillAndCastsKeepOrRoundBits()
    {
        using var x = Bf([2, 3, 4, 5], 1);
        // NCHW → NHWC (the channels-last edge) is a permuted copy: bits move, nothing is rounded.
        using var nhwc = x.Permute(0, 2, 3, 1).Contiguous();
        var src = x.ToArray<BFloat16>(); var dst = nhwc.ToArray<BFloat16>();
        for (int n = 0; n < 2; n++) for (int c = 0; c < 3; c++) for (int h = 0; h < 4; h++) for (int w = 0; w < 5; w++)
            Assert.That(dst[((n * 4 + h) * 5 + w) * 3 + c].Bits, Is.EqualTo(src[((n * 3 + c) * 4 + h) * 5 + w].Bits));
        using var back = nhwc.Permute(0, 3, 1, 2).Contiguous();
        Assert.That(Bits(back), Is.EqualTo(Bits(x)), "NHWC → NCHW restores every bit");

        // Fill and CopyInto on strided bf16 views.
        using var z = Tensor.Zeros([3, 4], DType.BFloat16);
        using (var col = z.Narrow(1, 1, 2)) Be.Fill(col.StorageView, 1.005);   // rounds to 1 + 2⁻⁷
        using (var row = z.Narrow(0, 2, 1)) { using var ones = Tensor.Full([1, 4], -2.5, DType.BFloat16); Be.CopyInto(ones.StorageView, row.StorageView); }
        Assert.That(z.ToFloatArray(), Is.EqualTo(new float[] { 0, 1.0078125f, 1.0078125f, 0, 0, 1.0078125f, 1.0078125f, 0, -2.5f, -2.5f, -2.5f, -2.5f }));

        // Casts: float32 → bf16 rounds to nearest even; bf16 → float32 is exact; float64 and integers go through float32;
        // bf16 → integers truncate toward zero.
        var f = new float[] { 1.00390625f, 1.01171875f, -3.99f, 65504f, float.MaxValue, 1e-40f, float.NaN };
        using var ft = Tensor.FromArray(f);
        using var b = ft.To(DType.BFloat16);
        Assert.That(Bits(b), Is.EqualTo(RoundedBits(f)));
        using var wide = b.To(DType.Float32);
        Assert.That(wide.ToArray<float>(), Is.EqualTo(b.ToArray<BFloat16>().Select(v => v.ToFloat()).ToArray()));
        var d = new double[] { 1.00390625 + 1e-12, -7.25, 1e300 };
        using var dt = Tensor.FromArray(d);
        using var db = dt.To(DType.BFloat16);
        Assert.That(Bits(db), Is.EqualTo(RoundedBits(d.Select(v => (float)v).ToArray())), "float64 → float32 → bf16");
        using var it = Tensor.FromArray(new long[] { 257, -1000001, 3 });
        using var ib = it.To(DType.BFloat16);
        Assert.That(ib.ToFloatArray(), Is.EqualTo(new float[] { 256, -999424, 3 }));
        using var neg = Tensor.FromArray(new float[] { -2.75f, 2.75f, 0.5f }).To(DType.BFloat16);
        using var ints = neg.To(DType.Int64);
        Assert.That(ints.ToArray<long>(), Is.EqualTo(new long[] { -2, 2, 0 }));
    }

    [Test]
    public void UnaryAndBinaryRoundTheFloat32ResultOnce([Values] UnaryOp op)
    {
        using var x = Bf([5, 7], 2, 2);
        using var xt = x.T;                                   // a strided operand
        using var pos = Ops.Abs(xt);                          // log, sqrt, pow need x > 0
        var input = op is UnaryOp.Log or UnaryOp.Sqrt or UnaryOp.PowScalar or UnaryOp.RDivScalar ? pos : xt;
        double a = op == UnaryOp.PowScalar ? 1.5 : op == UnaryOp.Clamp || op == UnaryOp.InRange ? -0.5 : 0.75, b = 0.6;
        using var wide = F32(input);
        AssertRounded(op.ToString(), Be.Unary(op, input.StorageView, a, b), Be.Unary(op, wide.StorageView, a, b), input.Shape);
    }

    [Test]
    public void BinaryBroadcastsAndRounds([Values] BinaryOp op)
    {
        using var a = Bf([4, 6], 3);
        using var b = Bf([1, 6], 4);
        using var pa = Ops.Abs(a);
        var left = op == BinaryOp.Pow ? pa : a;
        var shape = new[] { 4, 6 };
        using var wa = F32(left); using var wb = F32(b);
        AssertRounded(op.ToString(), Be.Binary(op, left.StorageView, b.StorageView.BroadcastTo(shape)),
            Be.Binary(op, wa.StorageView, wb.StorageView.BroadcastTo(shape)), shape);
    }

    [Test]
    public void IndependentPointwiseReference()
    {
        using var a = Bf([64], 5, 3);
        using var b = Bf([64], 6, 3);
        using var s = Ops.Add(a, b);
        using var e = Ops.Exp(a);
        using var r = Ops.Relu(a);
        float[] fa = a.ToFloatArray(), fb = b.ToFloatArray();
        Assert.That(Bits(s), Is.EqualTo(RoundedBits(fa.Zip(fb, (p, q) => p + q).ToArray())));
        Assert.That(Bits(e), Is.EqualTo(RoundedBits(fa.Select(MathF.Exp).ToArray())));
        Assert.That(Bits(r), Is.EqualTo(RoundedBits(fa.Select(v => Math.Max(v, 0f)).ToArray())));
        Assert.That(s.DType, Is.EqualTo(DType.BFloat16));
    }

    [Test]
    public void WhereSelectsBits()
    {
        using var a = Bf([3, 5], 7); using var b = Bf([3, 5], 8);
        using var c = Tensor.FromArray(Enumerable.Range(0, 15).Select(i => (long)(i % 3)).ToArray(), [3, 5]);
        using var y = Ops.Where(c, a, b);
        var ya = Bits(y); var aa = Bits(a); var ba = Bits(b);
        for (int i = 0; i < 15; i++) Assert.That(ya[i], Is.EqualTo(i % 3 != 0 ? aa[i] : ba[i]));
    }

    [Test]
    public void ReductionsStayFloat32()
    {
        using var x = Bf([4, 9, 3], 9);
        using var w = F32(x);
        foreach (var op in new[] { ReduceOp.Sum, ReduceOp.Max, ReduceOp.Min })
            AssertSameFloat32(op.ToString(), Be.Reduce(op, x.StorageView, [1]), Be.Reduce(op, w.StorageView, [1]), [4, 1, 3]);
        using var am = Tensor.FromStorage(Be.Reduce(ReduceOp.ArgMax, x.StorageView, [2]), [4, 9, 1]);
        using var amRef = Tensor.FromStorage(Be.Reduce(ReduceOp.ArgMax, w.StorageView, [2]), [4, 9, 1]);
        Assert.That(am.ToArray<long>(), Is.EqualTo(amRef.ToArray<long>()));
        // Independent: a sum accumulated in double from the widened values.
        using var total = Tensor.FromStorage(Be.Reduce(ReduceOp.Sum, x.StorageView, [0, 1, 2]), [1, 1, 1]);
        Assert.That(total.ToArray<float>()[0], Is.EqualTo((float)x.ToFloatArray().Sum(v => (double)v)));
    }

    [Test]
    public void MatMulRoundsTheFloat32Product()
    {
        using var a = Bf([2, 5, 33], 10);
        using var bT = Bf([2, 17, 33], 11);
        using var b = bT.Transpose(1, 2);                     // a transposed operand, read in place
        using var wa = F32(a); using var wb = F32(b);
        AssertRounded("matmul", Be.MatMul(a.StorageView, b.StorageView), Be.MatMul(wa.StorageView, wb.StorageView), [2, 5, 17]);
        // Independent: a naive float32 dot product; another order of additions moves the result by at most one bf16 ulp.
        using var y = Ops.MatMul(a, b);
        float[] fa = a.ToFloatArray(), fb = b.ToFloatArray(), fy = y.ToFloatArray();
        for (int n = 0; n < 2; n++) for (int i = 0; i < 5; i++) for (int j = 0; j < 17; j++)
        {
            float acc = 0;
            for (int k = 0; k < 33; k++) acc += fa[(n * 5 + i) * 33 + k] * fb[(n * 33 + k) * 17 + j];
            float got = fy[(n * 5 + i) * 17 + j], want = BFloat16.FromFloat(acc).ToFloat();
            Assert.That(Math.Abs(got - want), Is.LessThanOrEqualTo(Math.Abs(want) / 128 + 1e-30), $"[{n},{i},{j}]");
        }
    }

    [Test]
    public void ConvolutionPassesRoundTheFloat32Result()
    {
        var g = Conv2dGeometry.Square(stride: 2, padding: 1);
        using var x = Bf([2, 3, 9, 9], 12);
        using var w = Bf([4, 3, 3, 3], 13);
        using var dy = Bf([2, 4, 5, 5], 14);
        using var wx = F32(x); using var ww = F32(w); using var wdy = F32(dy);
        AssertRounded("conv2d", Be.Conv2dForward(x.StorageView, w.StorageView, g), Be.Conv2dForward(wx.StorageView, ww.StorageView, g), [2, 4, 5, 5]);
        AssertRounded("conv2d backward-data", Be.Conv2dBackwardData(dy.StorageView, w.StorageView, g, [2, 3, 9, 9]),
            Be.Conv2dBackwardData(wdy.StorageView, ww.StorageView, g, [2, 3, 9, 9]), [2, 3, 9, 9]);
        AssertRounded("conv2d backward-weights", Be.Conv2dBackwardWeight(x.StorageView, dy.StorageView, g, [4, 3, 3, 3]),
            Be.Conv2dBackwardWeight(wx.StorageView, wdy.StorageView, g, [4, 3, 3, 3]), [4, 3, 3, 3]);
        Assert.Throws<InvalidOperationException>(() => Be.Conv2dForward(x.StorageView, ww.StorageView, g).Release(), "mixed dtypes are refused");
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(true, true)]
    public void BatchNormKeepsStatisticsAndParametersFloat32(bool relu, bool residual)
    {
        int[] shape = [3, 4, 5, 6];
        using var x = Bf(shape, 15, 2);
        using var res = Bf(shape, 16);
        using var wx = F32(x); using var wres = F32(res);
        using var gamma = Tensor.RandN([4], new Rng(17)); using var beta = Tensor.RandN([4], new Rng(18));
        using var rm1 = Tensor.Zeros([4]); using var rv1 = Tensor.Ones([4]);
        using var rm2 = Tensor.Zeros([4]); using var rv2 = Tensor.Ones([4]);
        (Storage, Storage, Storage) Run(Tensor input, Tensor r, Tensor rm, Tensor rv) => residual
            ? Be.BatchNorm2dAddReluTrainForward(input.StorageView, r.StorageView, gamma.StorageView, beta.StorageView, rm.StorageView, rv.StorageView, 0.1, 1e-5)
            : relu ? Be.BatchNorm2dReluTrainForward(input.StorageView, gamma.StorageView, beta.StorageView, rm.StorageView, rv.StorageView, 0.1, 1e-5)
            : Be.BatchNorm2dTrainForward(input.StorageView, gamma.StorageView, beta.StorageView, rm.StorageView, rv.StorageView, 0.1, 1e-5);
        var (y, mean, invStd) = Run(x, res, rm1, rv1);
        var (yr, meanR, invStdR) = Run(wx, wres, rm2, rv2);
        using var yt = Tensor.FromStorage(y, shape);
        using var yrt = Tensor.FromStorage(yr, shape);
        Assert.That(Bits(yt), Is.EqualTo(RoundedBits(yrt.ToArray<float>())), "y");
        AssertSameFloat32("mean", mean, meanR, [4]);
        AssertSameFloat32("invstd", invStd, invStdR, [4]);
        Assert.That(rm1.ToArray<float>(), Is.EqualTo(rm2.ToArray<float>()), "running mean updated in place, float32");
        Assert.That(rv1.ToArray<float>(), Is.EqualTo(rv2.ToArray<float>()), "running var");

        // Backward: dx bf16, dweight and dbias float32.
        using var dy = Bf(shape, 19);
        using var wdy = F32(dy);
        using var m = Tensor.FromStorage(Be.Contiguous(new(rm1.Storage, rm1.Layout)), [4]);
        using var s = Ops.AddScalar(rv1, 0.5);
        var (dx, dw, db) = relu
            ? Be.BatchNorm2dReluBackward(dy.StorageView, yt.StorageView, x.StorageView, m.StorageView, s.StorageView, gamma.StorageView, true)
            : Be.BatchNorm2dBackward(dy.StorageView, x.StorageView, m.StorageView, s.StorageView, gamma.StorageView, true);
        using var yw = F32(yt);
        var (dxr, dwr, dbr) = relu
            ? Be.BatchNorm2dReluBackward(wdy.StorageView, yw.StorageView, wx.StorageView, m.StorageView, s.StorageView, gamma.StorageView, true)
            : Be.BatchNorm2dBackward(wdy.StorageView, wx.StorageView, m.StorageView, s.StorageView, gamma.StorageView, true);
        AssertRounded("dx", dx, dxr, shape);
        AssertSameFloat32("dweight", dw, dwr, [4]);
        AssertSameFloat32("dbias", db, dbr, [4]);

        var ev = Be.BatchNorm2dEvalForward(x.StorageView, gamma.StorageView, beta.StorageView, rm1.StorageView, rv1.StorageView, 1e-5);
        AssertRounded("eval", ev, Be.BatchNorm2dEvalForward(wx.StorageView, gamma.StorageView, beta.StorageView, rm1.StorageView, rv1.StorageView, 1e-5), shape);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void SoftmaxComputesInFloat32AndRoundsOnce(bool log)
    {
        using var x = Bf([3, 10, 4], 20, 3);
        using var w = F32(x);
        AssertRounded(log ? "log_softmax" : "softmax", Be.Softmax(x.StorageView, 1, log), Be.Softmax(w.StorageView, 1, log), [3, 10, 4]);
        // Independent: rows of the last dim in double, rounded through float.
        using var last = Tensor.FromStorage(Be.Softmax(x.StorageView, 2, log), [3, 10, 4]);
        var f = x.ToFloatArray(); var got = last.ToFloatArray();
        for (int r = 0; r < 30; r++)
        {
            double mx = Enumerable.Range(0, 4).Max(j => (double)f[r * 4 + j]);
            double sum = Enumerable.Range(0, 4).Sum(j => Math.Exp(f[r * 4 + j] - mx));
            for (int j = 0; j < 4; j++)
            {
                double want = log ? f[r * 4 + j] - mx - Math.Log(sum) : Math.Exp(f[r * 4 + j] - mx) / sum;
                Assert.That(got[r * 4 + j], Is.EqualTo(want).Within(Math.Abs(want) / 128 + 1e-6), $"row {r} col {j}");
            }
        }
    }

    [Test]
    public void PoolingRoundsAndKeepsIndices()
    {
        int[] shape = [2, 3, 7, 6];
        using var x = Bf(shape, 21);
        using var wx = F32(x);
        var g = Pool2dGeometry.Square(3, 2, 1);
        int[] outShape = [2, 3, 4, 3];
        var (y, idx) = Be.MaxPool2dForward(x.StorageView, g);
        var (yr, idxr) = Be.MaxPool2dForward(wx.StorageView, g);
        AssertRounded("max_pool2d", y, yr, outShape);
        using var it = Tensor.FromStorage(idx, outShape); using var itr = Tensor.FromStorage(idxr, outShape);
        Assert.That(it.ToArray<long>(), Is.EqualTo(itr.ToArray<long>()));
        using var dy = Bf(outShape, 22); using var wdy = F32(dy);
        AssertRounded("max_pool2d backward", Be.MaxPool2dBackward(dy.StorageView, it.StorageView, shape), Be.MaxPool2dBackward(wdy.StorageView, it.StorageView, shape), shape);
        AssertRounded("avg_pool2d", Be.AvgPool2dForward(x.StorageView, g), Be.AvgPool2dForward(wx.StorageView, g), outShape);
        AssertRounded("avg_pool2d backward", Be.AvgPool2dBackward(dy.StorageView, g, shape), Be.AvgPool2dBackward(wdy.StorageView, g, shape), shape);
        AssertRounded("adaptive_avg_pool2d", Be.AdaptiveAvgPool2dForward(x.StorageView, 3, 2), Be.AdaptiveAvgPool2dForward(wx.StorageView, 3, 2), [2, 3, 3, 2]);
        using var dya = Bf([2, 3, 3, 2], 23); using var wdya = F32(dya);
        AssertRounded("adaptive_avg_pool2d backward", Be.AdaptiveAvgPool2dBackward(dya.StorageView, shape), Be.AdaptiveAvgPool2dBackward(wdya.StorageView, shape), shape);
    }

    [Test]
    public void IndexOpsOnBf16()
    {
        using var x = Bf([4, 8], 24);
        using var wx = F32(x);
        var (v, i) = Be.TopK(x.StorageView, 1, 3, largest: true);
        var (vr, ir) = Be.TopK(wx.StorageView, 1, 3, largest: true);
        AssertRounded("topk", v, vr, [4, 3]);
        using var it = Tensor.FromStorage(i, [4, 3]); using var itr = Tensor.FromStorage(ir, [4, 3]);
        Assert.That(it.ToArray<long>(), Is.EqualTo(itr.ToArray<long>()));
        AssertRounded("gather", Be.Gather(x.StorageView, 1, it.StorageView), Be.Gather(wx.StorageView, 1, it.StorageView), [4, 3]);
        using var src = Bf([4, 3], 25); using var wsrc = F32(src);
        AssertRounded("scatter_add", Be.ScatterAdd(x.StorageView, 1, it.StorageView, src.StorageView),
            Be.ScatterAdd(wx.StorageView, 1, it.StorageView, wsrc.StorageView), [4, 8]);
    }

    [Test]
    public void DispatchAndCombineTakeFloat32Gates()
    {
        int b = 6, k = 2, e = 3, d = 5;
        using var top = Tensor.FromArray(new[] { 0, 2, 1, 0, 2, 1, 0, 1, 2, 0, 1, 2 }, [b, k]);
        var plan = Be.MoeRoute(top.Storage, b, k, e, capacity: -1);
        using var offsets = Tensor.FromStorage(plan.Offsets, [e + 1]); using var slot = Tensor.FromStorage(plan.SlotOf, [b, k]);
        using var source = Tensor.FromStorage(plan.SourceRow, [b * k]);
        using var x = Bf([b, d], 26); using var wx = F32(x);
        AssertRounded("moe_dispatch", Be.MoeDispatch(x.StorageView, source.Storage, b * k), Be.MoeDispatch(wx.StorageView, source.Storage, b * k), [b * k, d]);
        using var gbuf = Bf([b * k, d], 27); using var wg = F32(gbuf);
        AssertRounded("moe_dispatch backward", Be.MoeDispatchBackward(gbuf.StorageView, slot.Storage, b, k),
            Be.MoeDispatchBackward(wg.StorageView, slot.Storage, b, k), [b, d]);
        using var y = Bf([b * k, 4], 28); using var wy = F32(y);
        using var gates = Tensor.Rand([b, e], new Rng(29));
        AssertRounded("moe_combine", Be.MoeCombine(y.StorageView, gates.StorageView, top.Storage, slot.Storage, k),
            Be.MoeCombine(wy.StorageView, gates.StorageView, top.Storage, slot.Storage, k), [b, 4]);
        using var go = Bf([b, 4], 30); using var wgo = F32(go);
        var (gy, gg) = Be.MoeCombineBackward(go.StorageView, y.StorageView, gates.StorageView, top.Storage, slot.Storage, k);
        var (gyr, ggr) = Be.MoeCombineBackward(wgo.StorageView, wy.StorageView, gates.StorageView, top.Storage, slot.Storage, k);
        AssertRounded("moe_combine backward: expert outputs", gy, gyr, [b * k, 4]);
        AssertSameFloat32("moe_combine backward: gates", gg, ggr, [b, e]);
        using var bfGates = gates.To(DType.BFloat16);
        var err = Assert.Throws<NotSupportedException>(() => Be.MoeCombine(y.StorageView, bfGates.StorageView, top.Storage, slot.Storage, k).Release());
        Assert.That(err!.Message, Does.Contain("moe_combine").And.Contain("float32 gates"));
    }

    [Test]
    public void UnsupportedBf16UsesAreClearErrors()
    {
        using var clean = Bf([4, 3], 31);
        var gating = Assert.Throws<NotSupportedException>(() => Be.MoeGating(clean.StorageView, null, null, 1, 0.01));
        Assert.That(gating!.Message, Does.Contain("moe_gating").And.Contain("float32"));
        using var p = Bf([5], 32); using var g = Bf([5], 33);
        var sgd = Assert.Throws<NotSupportedException>(() => Be.SgdUpdate(p.StorageView, g.StorageView, null, 0.1, 0, 0, 0, false, false));
        Assert.That(sgd!.Message, Does.Contain("sgd_update").And.Contain("bf16"));
        using var rm = Tensor.Zeros([3], DType.BFloat16); using var rv = Tensor.Ones([3], DType.BFloat16);
        using var x = Bf([2, 3, 2, 2], 34);
        var bn = Assert.Throws<NotSupportedException>(() => Be.BatchNorm2dTrainForward(x.StorageView, null, null, rm.StorageView, rv.StorageView, 0.1, 1e-5));
        Assert.That(bn!.Message, Does.Contain("batch_norm2d").And.Contain("running statistics"));
    }
}
