using MtlMoe.Engine;
using MtlMoe.Engine.Backends;

namespace MtlMoe.Tests.Cuda;

/// <summary>
/// Every op, forward and backward, on the CPU and on CUDA from the same seeded inputs; each case has its own
/// relative-error threshold (FP32 kernels: 1e-5 for exact-rounding ops, up to 1e-4 for the approximate
/// exp/log units, reductions and GEMM/conv with a different summation order). NaN never passes.
/// </summary>
[Category("Cuda")]
[NonParallelizable] // one GPU context and stream, and the caching allocator's counters, shared by every CUDA test
public class CudaOpParityTests
{
    /// <summary>One table row: input shapes, the op (its inputs may be CPU or GPU tensors), threshold, whether it has a backward.</summary>
    public sealed record OpCase(string Name, int[][] Shapes, Func<Tensor[], Tensor> Op, double Tol = 1e-5, bool Backward = true)
    {
        public override string ToString() => Name;
    }

    static Tensor Pos(Tensor x) => Ops.AddScalar(Ops.Abs(x), 0.5);   // strictly positive inputs for log/sqrt/div/pow
    static Tensor Labels(Tensor like, params long[] v) => Tensor.FromArray(v, device: like.Device);
    static Tensor Idx(Tensor like, int[] shape, params long[] v) => Tensor.FromArray(v, shape, like.Device);

    static readonly OpCase[] Table =
    [
        // ---- elementwise (broadcasting and strided views) ----
        new("add_broadcast", [[4, 5], [5]], x => Ops.Add(x[0], x[1])),
        new("sub_broadcast_rows", [[4, 5], [4, 1]], x => Ops.Sub(x[0], x[1])),
        new("mul_transposed", [[5, 4], [4, 5]], x => Ops.Mul(x[0].T, x[1])),
        new("div", [[3, 6], [3, 6]], x => Ops.Div(x[0], Pos(x[1]))),
        new("maximum", [[3, 6], [6]], x => Ops.Maximum(x[0], x[1])),
        new("minimum", [[3, 6], [3, 6]], x => Ops.Minimum(x[0], x[1])),
        new("pow_tensor", [[3, 4], [3, 4]], x => Ops.Pow(Pos(x[0]), x[1]), 1e-4),
        new("neg", [[7, 3]], x => Ops.Neg(x[0])),
        new("abs", [[7, 3]], x => Ops.Abs(x[0])),
        new("exp", [[7, 3]], x => Ops.Exp(x[0]), 1e-5),
        new("log", [[7, 3]], x => Ops.Log(Pos(x[0])), 1e-5),
        new("sqrt", [[7, 3]], x => Ops.Sqrt(Pos(x[0]))),
        new("relu", [[7, 3]], x => Ops.Relu(x[0])),
        new("sigmoid", [[7, 3]], x => Ops.Sigmoid(x[0]), 1e-5),
        new("tanh", [[7, 3]], x => Ops.Tanh(x[0]), 1e-5),
        new("softplus", [[7, 3]], x => Ops.Softplus(x[0]), 1e-5),
        new("erf", [[7, 3]], x => Ops.Erf(x[0]), 1e-5),
        new("norm_cdf", [[7, 3]], x => Ops.NormCdf(x[0]), 1e-5),
        new("pow_scalar", [[7, 3]], x => Ops.Pow(Pos(x[0]), 2.5), 1e-5),
        new("clamp", [[7, 3]], x => Ops.Clamp(x[0], -0.5, 0.7)),
        new("rdiv_scalar", [[7, 3]], x => Ops.RDivScalar(Pos(x[0]), 3)),
        new("where", [[4, 5], [4, 5], [5]], x => Ops.Where(Ops.GtScalar(x[0], 0), x[1], x[2])),
        new("compare_eq_ne", [[4, 5], [4, 5]], x => Ops.Add(Ops.Gt(x[0], x[1]), Ops.Ne(x[0], x[0])), Backward: false),
        new("permuted_contiguous", [[2, 3, 4]], x => Ops.MulScalar(x[0].Permute(2, 0, 1).Contiguous(), 2)),
        // ---- reductions ----
        new("sum_dims", [[3, 4, 5]], x => Ops.Sum(x[0], [0, 2])),
        new("sum_all", [[3, 4, 5]], x => Ops.Sum(x[0])),
        new("mean_last", [[6, 33]], x => Ops.Mean(x[0], [1], keepDim: true)),
        new("var", [[6, 33]], x => Ops.Var(x[0], [1], unbiased: true), 1e-5),
        new("max_dim", [[6, 9]], x => Ops.Max(x[0], [0])),
        new("min_last", [[6, 9]], x => Ops.Min(x[0], [1])),
        // Long reduced dims with few outputs take the chunked first pass; adjacent reduced dims merge into one pass.
        new("sum_all_long", [[300, 700]], x => Ops.Sum(Pos(x[0]))),
        new("sum_dim0_long", [[5000, 3]], x => Ops.Sum(Pos(x[0]), [0])),
        new("sum_adjacent_dims_long", [[3, 40, 50, 2]], x => Ops.Sum(Pos(x[0]), [1, 2])),
        new("max_last_long", [[2, 3001]], x => Ops.Max(x[0], [1])),
        new("min_middle_long", [[2, 1000, 3]], x => Ops.Min(x[0], [1])),
        new("argmax", [[6, 9]], x => Ops.ArgMax(x[0], 1), Backward: false),
        new("argmin_dim0", [[6, 9]], x => Ops.ArgMin(x[0], 0), Backward: false),
        new("logsumexp", [[5, 12]], x => Ops.LogSumExp(x[0], 1), 1e-5),
        // ---- matmul ----
        new("matmul", [[7, 13], [13, 5]], x => Ops.MatMul(x[0], x[1]), 1e-5),
        new("matmul_a_transposed", [[13, 7], [13, 5]], x => Ops.MatMul(x[0].T, x[1]), 1e-5),
        new("matmul_b_transposed", [[7, 13], [5, 13]], x => Ops.MatMul(x[0], x[1].T), 1e-5),
        new("matmul_batched", [[3, 7, 13], [3, 13, 5]], x => Ops.MatMul(x[0], x[1]), 1e-5),
        new("matmul_broadcast_batch", [[3, 7, 13], [13, 5]], x => Ops.MatMul(x[0], x[1]), 1e-5),
        new("matmul_vector_like", [[1, 13], [13, 1]], x => Ops.MatMul(x[0], x[1]), 1e-5),
        new("linear", [[8, 16], [10, 16], [10]], x => Ops.Linear(x[0], x[1], x[2]), 1e-5),
        // ---- conv / pool / norm ----
        new("conv2d", [[2, 3, 9, 9], [4, 3, 3, 3], [4]], x => Ops.Conv2d(x[0], x[1], x[2], stride: 2, padding: 1), 1e-4),
        new("conv2d_groups_dilation", [[2, 4, 8, 8], [6, 2, 3, 3]], x => Ops.Conv2d(x[0], x[1], null, stride: 1, padding: 2, dilation: 2, groups: 2), 1e-4),
        new("conv2d_1x1", [[2, 8, 5, 5], [4, 8, 1, 1]], x => Ops.Conv2d(x[0], x[1]), 1e-4),
        new("max_pool2d_overlapping", [[2, 3, 9, 9]], x => Ops.MaxPool2d(x[0], 3, 2, 1)),
        new("avg_pool2d", [[2, 3, 8, 8]], x => Ops.AvgPool2d(x[0], 2)),
        new("adaptive_avg_pool2d_1x1", [[2, 3, 7, 7]], x => Ops.AdaptiveAvgPool2d(x[0], 1, 1), 1e-5),
        new("adaptive_avg_pool2d_3x3", [[2, 3, 7, 8]], x => Ops.AdaptiveAvgPool2d(x[0], 3, 3), 1e-5),
        new("batch_norm2d_train", [[4, 3, 5, 5], [3], [3]], x => Ops.BatchNorm2d(x[0], x[1], x[2],
            Tensor.Zeros([3], device: x[0].Device), Tensor.Ones([3], device: x[0].Device), training: true), 1e-4),
        new("batch_norm2d_eval", [[4, 3, 5, 5], [3], [3]], x => Ops.BatchNorm2d(x[0], x[1], x[2],
            Tensor.Full([3], 0.1, device: x[0].Device), Tensor.Full([3], 2.0, device: x[0].Device), training: false), 1e-5),
        new("batch_norm_relu_train", [[4, 3, 5, 5], [3], [3]], x => Ops.BatchNormRelu(x[0], x[1], x[2],
            Tensor.Zeros([3], device: x[0].Device), Tensor.Ones([3], device: x[0].Device), training: true), 1e-4),
        new("batch_norm_add_relu_train", [[4, 3, 5, 5], [3], [3], [5, 3, 4, 5]], x => Ops.BatchNormAddRelu(x[0], x[3].Permute(2, 1, 3, 0),
            x[1], x[2], Tensor.Zeros([3], device: x[0].Device), Tensor.Ones([3], device: x[0].Device), training: true), 1e-4),
        new("batch_norm_add_relu_eval", [[4, 3, 5, 5], [3], [3], [4, 3, 5, 5]], x => Ops.BatchNormAddRelu(x[0], x[3], x[1], x[2],
            Tensor.Full([3], 0.1, device: x[0].Device), Tensor.Full([3], 2.0, device: x[0].Device), training: false), 1e-5),
        // ---- softmax / losses ----
        new("softmax_last", [[5, 17]], x => Ops.Softmax(x[0], -1), 1e-5),
        new("softmax_dim0", [[5, 17]], x => Ops.Softmax(x[0], 0), 1e-5),
        new("log_softmax", [[5, 17]], x => Ops.LogSoftmax(x[0], 1), 1e-5),
        new("cross_entropy", [[4, 6]], x => Ops.CrossEntropy(x[0], Labels(x[0], 1, 0, 5, 2)), 1e-5),
        new("cross_entropy_smoothing_sum", [[4, 6]], x => Ops.CrossEntropy(x[0], Labels(x[0], 3, 3, 0, 1), "sum", 0.1), 1e-5),
        new("smooth_l1", [[6, 4], [6, 4]], x => Ops.SmoothL1(x[0], x[1]), 1e-5),
        new("giou_loss", [[5, 4], [5, 4]], x => Ops.GIoULoss(Ops.BoxCxCyWhToXyXy(Ops.Sigmoid(x[0])), Ops.BoxCxCyWhToXyXy(Ops.Sigmoid(x[1]))), 1e-4),
        // ---- index ----
        new("topk_values", [[4, 10]], x => Ops.TopK(x[0], 3).Values),
        new("topk_indices_dim0", [[10, 4]], x => Ops.TopK(x[0], 2, dim: 0).Indices, Backward: false),
        new("topk_smallest", [[4, 10]], x => Ops.TopK(x[0], 3, largest: false).Values),
        new("gather", [[3, 5]], x => Ops.Gather(x[0], 1, Idx(x[0], [3, 2], 4, 0, 1, 1, 3, 2))),
        new("scatter_add", [[3, 5], [3, 2]], x => Ops.ScatterAdd(x[0], 1, Idx(x[0], [3, 2], 4, 4, 1, 1, 0, 2), x[1])),
        new("index_select", [[6, 4]], x => Ops.IndexSelect(x[0], 0, Labels(x[0], 5, 0, 5, 2))),
        new("concat_stack", [[2, 3], [4, 3]], x => Ops.Stack([Ops.Concat([x[0], x[1]], 0), Ops.Concat([x[1], x[0]], 0)], 1)),
        new("one_hot", [[1]], x => Ops.OneHot(Labels(x[0], 2, 0, 3), 4), Backward: false),
    ];

    static IEnumerable<TestCaseData> Cases() => Table.Select(c => new TestCaseData(c).SetName($"Parity_{c.Name}"));

    [SetUp]
    public void RequireCuda() => CudaTestEnv.RequireCuda();

    [TestCaseSource(nameof(Cases))]
    public void ForwardAndBackwardMatchTheCpu(OpCase c)
    {
        // A stable seed per case (string.GetHashCode is randomised per process).
        var cpu = CudaParity.Inputs(c.Shapes, c.Name.Aggregate(17, (h, ch) => (h * 31 + ch) & 0xffff));
        var gpu = cpu.Select(t => t.To(CudaParity.Gpu)).ToArray();
        if (c.Backward) foreach (var t in cpu.Concat(gpu)) t.RequiresGrad = true;
        var yc = c.Op(cpu);
        var yg = c.Op(gpu);
        CudaParity.AssertClose(c.Name + " forward", yc, yg, c.Tol);
        if (!c.Backward) return;
        // Backward of Σ(y·w) with the same random w on both devices.
        var w = Tensor.RandN(yc.Shape, new Rng(77));
        var wg = w.To(CudaParity.Gpu);
        Ops.Sum(Ops.Mul(yc, w)).Backward();
        Ops.Sum(Ops.Mul(yg, wg)).Backward();
        for (int i = 0; i < cpu.Length; i++)
        {
            Assert.That(gpu[i].Grad is null, Is.EqualTo(cpu[i].Grad is null), $"{c.Name}: gradient presence of input {i}");
            if (cpu[i].Grad is { } gc) CudaParity.AssertClose($"{c.Name} grad[{i}]", gc, gpu[i].Grad!, Math.Max(c.Tol, 1e-5) * 2);
        }
    }

    [Test]
    public void OptimizerStepsMatchTheCpu()
    {
        foreach (var adam in new[] { false, true })
        {
            var pc = Tensor.RandN([37], new Rng(5)); pc.RequiresGrad = true;
            var pg = pc.Detach().To(CudaParity.Gpu); pg.RequiresGrad = true;
            MtlMoe.Engine.Optim.Optimizer oc = adam ? new MtlMoe.Engine.Optim.AdamW([pc], 0.01) : new MtlMoe.Engine.Optim.SGD([pc], 0.1, momentum: 0.9, weightDecay: 1e-3, nesterov: true);
            MtlMoe.Engine.Optim.Optimizer og = adam ? new MtlMoe.Engine.Optim.AdamW([pg], 0.01) : new MtlMoe.Engine.Optim.SGD([pg], 0.1, momentum: 0.9, weightDecay: 1e-3, nesterov: true);
            for (int s = 0; s < 3; s++)
            {
                var g = Tensor.RandN([37], new Rng((ulong)(10 + s)));
                oc.ZeroGrad(); og.ZeroGrad();
                Ops.Sum(Ops.Mul(pc, g)).Backward();
                Ops.Sum(Ops.Mul(pg, g.To(CudaParity.Gpu))).Backward();
                oc.Step(); og.Step();
            }
            CudaParity.AssertClose(adam ? "adamw" : "sgd", pc.Detach(), pg.Detach(), 1e-5);
        }
    }

    [Test]
    public void LongReductionsRepeatBitForBit()
    {
        using var x = Tensor.RandN([1 << 20], new Rng(77), device: CudaParity.Gpu);
        using var cols = Tensor.RandN([65536, 16], new Rng(78), device: CudaParity.Gpu);
        CudaParity.AssertSameBits("sum of 2^20", Ops.Sum(x), Ops.Sum(x));
        CudaParity.AssertSameBits("column sums of [65536, 16]", Ops.Sum(cols, [0]), Ops.Sum(cols, [0]));
        CudaParity.AssertClose("column sums of [65536, 16]", Ops.Sum(cols.To(Device.Cpu), [0]), Ops.Sum(cols, [0]), 1e-4);
    }

    [Test]
    public void MixingDevicesInOneOpIsAClearError()
    {
        var a = Tensor.Ones([2]);
        var b = Tensor.Ones([2], device: CudaParity.Gpu);
        Assert.That(() => Ops.Add(a, b), Throws.InvalidOperationException.With.Message.Contains("different devices").And.Message.Contains("cuda:0"));
    }

    [Test]
    public void Float64TranscendentalsSayTheyAreFloat32Only()
    {
        var x = Tensor.Ones([3], DType.Float64, CudaParity.Gpu);
        Assert.That(() => Ops.Exp(x), Throws.TypeOf<NotSupportedException>().With.Message.Contains("float32"));
        // Arithmetic has double kernels.
        Assert.That(Ops.Add(x, x).ToArray<double>(), Is.EqualTo(new[] { 2.0, 2.0, 2.0 }));
    }

    [Test]
    public void TheAllocatorReusesFreedBlocks()
    {
        var be = (MtlMoe.Engine.Backends.Cuda.CudaBackend)BackendRegistry.Get(CudaParity.Gpu);
        for (int i = 0; i < 3; i++) Tensor.Zeros([1000, 10], device: CudaParity.Gpu).Dispose();
        long hits = be.Context.Allocator.CacheHits;
        long inUse = be.Context.Allocator.InUseBytes;
        Tensor.Zeros([1000, 10], device: CudaParity.Gpu).Dispose();
        Assert.That(be.Context.Allocator.CacheHits, Is.EqualTo(hits + 1));
        Assert.That(be.Context.Allocator.InUseBytes, Is.EqualTo(inUse));
    }

    [Test]
    public void UploadDownloadRoundTripsEveryDtype()
    {
        Assert.That(Tensor.FromArray(new float[] { 1.5f, -2 }, device: CudaParity.Gpu).ToArray<float>(), Is.EqualTo(new[] { 1.5f, -2 }));
        Assert.That(Tensor.FromArray(new double[] { 1e300, -2 }, device: CudaParity.Gpu).ToArray<double>(), Is.EqualTo(new[] { 1e300, -2 }));
        Assert.That(Tensor.FromArray(new[] { 7, -8 }, device: CudaParity.Gpu).ToArray<int>(), Is.EqualTo(new[] { 7, -8 }));
        Assert.That(Tensor.FromArray(new long[] { 1L << 40, -1 }, device: CudaParity.Gpu).To(DType.Float64).ToArray<double>(), Is.EqualTo(new[] { (double)(1L << 40), -1 }));
        var big = Tensor.RandN([3, 1 << 19], new Rng(1));
        Assert.That(big.To(CudaParity.Gpu).T.Contiguous().To(Device.Cpu).ToArray<float>(), Is.EqualTo(big.T.Contiguous().ToArray<float>()));
    }
}
