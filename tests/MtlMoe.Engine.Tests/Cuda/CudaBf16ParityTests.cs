using MtlMoe.Engine;
using MtlMoe.Engine.Amp;
using MtlMoe.Engine.MoE;

namespace MtlMoe.Tests.Cuda;

/// <summary>
/// Every bf16 kernel against the CPU backend's bf16 twins (widen → float32 → round once), forward and backward, from the
/// same seeded bf16 inputs. Both sides compute in float32 and round once; they differ only where float32 sums run in
/// another order or exp/log use the GPU's approximate units, so a result may land on the neighbouring bf16 value:
/// thresholds 1e-2 relative (bf16 has 8 significant bits), 2e-2 for convolutions and matrix products over long sums.
/// NaN never passes. Reductions of bf16 sum in float32 on both sides and round once (an op keeps its input's dtype).
/// </summary>
[Category("Cuda")]
[NonParallelizable] // one GPU context and stream, and the caching allocator's counters, shared by every CUDA test
public class CudaBf16ParityTests
{
    /// <summary>One row: input shapes (all made bf16), the op, threshold, whether it has a backward.</summary>
    public sealed record Bf16Case(string Name, int[][] Shapes, Func<Tensor[], Tensor> Op, double Tol = 1e-2, bool Backward = true)
    {
        public override string ToString() => Name;
    }

    static Tensor Pos(Tensor x) => Ops.AddScalar(Ops.Abs(x), 0.5);
    static Tensor F32(Tensor like, int c, double v) => Tensor.Full([c], v, device: like.Device);
    static Tensor Idx(Tensor like, int[] shape, params long[] v) => Tensor.FromArray(v, shape, like.Device);

    static readonly Bf16Case[] Table =
    [
        // ---- pointwise (unary_bf16, binary_bf16, where_bf16, relu_backward_bf16) ----
        new("add_broadcast", [[4, 5], [5]], x => Ops.Add(x[0], x[1])),
        new("mul_transposed", [[5, 4], [4, 5]], x => Ops.Mul(x[0].T, x[1])),
        new("div", [[3, 6], [3, 6]], x => Ops.Div(x[0], Pos(x[1]))),
        new("exp", [[7, 3]], x => Ops.Exp(x[0])),
        new("log", [[7, 3]], x => Ops.Log(Pos(x[0]))),
        new("sigmoid_tanh", [[7, 3]], x => Ops.Add(Ops.Sigmoid(x[0]), Ops.Tanh(x[0]))),
        new("softplus", [[7, 3]], x => Ops.Softplus(x[0])),
        new("relu", [[64, 33]], x => Ops.Relu(x[0])),
        new("pow_scalar", [[7, 3]], x => Ops.Pow(Pos(x[0]), 1.5)),
        new("clamp", [[7, 3]], x => Ops.Clamp(x[0], -0.5, 0.7)),
        new("where", [[4, 5], [4, 5], [5]], x => Ops.Where(Ops.GtScalar(x[0], 0), x[1], x[2])),
        new("compare", [[4, 5], [4, 5]], x => Ops.Gt(x[0], x[1]), Backward: false),
        new("nchw_to_nhwc_copy", [[2, 3, 4, 5]], x => Ops.MulScalar(x[0].Permute(0, 2, 3, 1).Contiguous(), 2)),
        // ---- reductions (float32 accumulation, one rounding; the chunked first pass for long dims) ----
        new("sum_dims", [[3, 4, 5]], x => Ops.Sum(x[0], [0, 2])),
        new("sum_all_long", [[300, 700]], x => Ops.Sum(Pos(x[0]))),
        new("sum_dim0_long", [[5000, 3]], x => Ops.Sum(Pos(x[0]), [0])),
        new("max_dim", [[6, 9]], x => Ops.Max(x[0], [0]), 0),
        new("argmax", [[6, 9]], x => Ops.ArgMax(x[0], 1), Backward: false),
        // ---- softmax ----
        new("softmax_last", [[5, 17]], x => Ops.Softmax(x[0], -1)),
        new("log_softmax", [[5, 17]], x => Ops.LogSoftmax(x[0], 1)),
        // ---- matmul (cublasGemmEx / GemmStridedBatchedEx, bf16 in and out, float32 accumulation) ----
        new("matmul", [[7, 130], [130, 5]], x => Ops.MatMul(x[0], x[1]), 2e-2),
        new("matmul_transposed", [[130, 7], [5, 130]], x => Ops.MatMul(x[0].T, x[1].T), 2e-2),
        new("matmul_batched", [[3, 7, 64], [3, 64, 5]], x => Ops.MatMul(x[0], x[1]), 2e-2),
        // ---- convolution (cuDNN CUDNN_DATA_BFLOAT16) ----
        new("conv2d", [[2, 8, 9, 9], [16, 8, 3, 3]], x => Ops.Conv2d(x[0], x[1], null, stride: 2, padding: 1), 2e-2),
        new("conv2d_1x1", [[2, 16, 5, 5], [8, 16, 1, 1]], x => Ops.Conv2d(x[0], x[1]), 2e-2),
        // ---- batch norm (bf16 activations, float32 statistics and parameters) ----
        new("batch_norm2d_train", [[4, 3, 5, 5]], x => Ops.BatchNorm2d(x[0], F32(x[0], 3, 1.5), F32(x[0], 3, 0.1),
            F32(x[0], 3, 0), F32(x[0], 3, 1), training: true), 2e-2),
        new("batch_norm2d_eval", [[4, 3, 5, 5]], x => Ops.BatchNorm2d(x[0], F32(x[0], 3, 1.5), null,
            F32(x[0], 3, 0.1), F32(x[0], 3, 2), training: false)),
        new("batch_norm_relu_train", [[4, 3, 5, 5]], x => Ops.BatchNormRelu(x[0], F32(x[0], 3, 1), F32(x[0], 3, 0.2),
            F32(x[0], 3, 0), F32(x[0], 3, 1), training: true), 2e-2),
        new("batch_norm_add_relu_train", [[4, 3, 5, 5], [4, 3, 5, 5]], x => Ops.BatchNormAddRelu(x[0], x[1], F32(x[0], 3, 1), null,
            F32(x[0], 3, 0), F32(x[0], 3, 1), training: true), 2e-2),
        // ---- pooling ----
        new("max_pool2d_overlapping", [[2, 3, 9, 9]], x => Ops.MaxPool2d(x[0], 3, 2, 1)),
        new("avg_pool2d", [[2, 3, 8, 8]], x => Ops.AvgPool2d(x[0], 2)),
        new("adaptive_avg_pool2d", [[2, 3, 7, 8]], x => Ops.AdaptiveAvgPool2d(x[0], 3, 3)),
        // ---- index (through float32) ----
        new("topk_values", [[4, 10]], x => Ops.TopK(x[0], 3).Values),
        new("gather", [[3, 5]], x => Ops.Gather(x[0], 1, Idx(x[0], [3, 2], 4, 0, 1, 1, 3, 2))),
        new("scatter_add", [[3, 5], [3, 2]], x => Ops.ScatterAdd(x[0], 1, Idx(x[0], [3, 2], 4, 4, 1, 1, 0, 2), x[1])),
    ];

    static IEnumerable<TestCaseData> Cases() => Table.Select(c => new TestCaseData(c).SetName($"Bf16Parity_{c.Name}"));

    [SetUp]
    public void RequireCuda() => CudaTestEnv.RequireCuda();

    static Tensor[] Bf16Inputs(int[][] shapes, int seed, Device device) =>
        CudaParity.Inputs(shapes, seed).Select(t => t.To(device).To(DType.BFloat16)).ToArray();

    [TestCaseSource(nameof(Cases))]
    public void ForwardAndBackwardMatchTheCpuTwins(Bf16Case c)
    {
        int seed = c.Name.Aggregate(23, (h, ch) => (h * 31 + ch) & 0xffff);
        var cpu = Bf16Inputs(c.Shapes, seed, Device.Cpu);
        var gpu = Bf16Inputs(c.Shapes, seed, CudaParity.Gpu);
        if (c.Backward) foreach (var t in cpu.Concat(gpu)) t.RequiresGrad = true;
        var yc = c.Op(cpu);
        var yg = c.Op(gpu);
        Assert.That(yg.DType, Is.EqualTo(yc.DType), $"{c.Name}: the GPU result's dtype");
        CudaParity.AssertClose(c.Name + " forward", yc, yg, c.Tol);
        if (!c.Backward) return;
        var w = Tensor.RandN(yc.Shape, new Rng(77)).To(yc.DType);
        Ops.Sum(Ops.Mul(yc, w)).Backward();
        Ops.Sum(Ops.Mul(yg, w.To(CudaParity.Gpu))).Backward();
        for (int i = 0; i < cpu.Length; i++)
        {
            Assert.That(gpu[i].Grad is null, Is.EqualTo(cpu[i].Grad is null), $"{c.Name}: gradient presence of input {i}");
            if (cpu[i].Grad is { } gc) CudaParity.AssertClose($"{c.Name} grad[{i}]", gc, gpu[i].Grad!, Math.Max(c.Tol, 1e-2) * 2);
        }
    }

    [Test]
    public void CastsAndFillsGiveTheCpuBits()
    {
        // Rounding is one integer formula on both sides: identical bits, NaN payloads included.
        var f = new float[1031];
        var rng = new Rng(9);
        for (int i = 0; i < f.Length; i++) f[i] = (float)(rng.NextGaussian() * Math.Pow(10, rng.Uniform(-30, 30)));
        f[0] = float.NaN; f[1] = float.PositiveInfinity; f[2] = -0f; f[3] = 1.00390625f; f[4] = float.MaxValue;
        using var cpu = Tensor.FromArray(f);
        using var gpu = cpu.To(CudaParity.Gpu);
        using var bc = cpu.To(DType.BFloat16);
        using var bg = gpu.To(DType.BFloat16);                                  // cast_dense_f32_bf16 (aligned, dense)
        using var sg = gpu.Narrow(0, 1, 1000).To(DType.BFloat16);               // a view at an odd offset: the strided cast
        using var sc = cpu.Narrow(0, 1, 1000).To(DType.BFloat16);
        Assert.That(bg.ToArray<BFloat16>().Select(b => b.Bits), Is.EqualTo(bc.ToArray<BFloat16>().Select(b => b.Bits)));
        Assert.That(sg.ToArray<BFloat16>().Select(b => b.Bits), Is.EqualTo(sc.ToArray<BFloat16>().Select(b => b.Bits)));
        using var back = bg.To(DType.Float32);                                   // cast_dense_bf16_f32: exact
        Assert.That(back.ToArray<float>().Select(BitConverter.SingleToInt32Bits), Is.EqualTo(bc.To(DType.Float32).ToArray<float>().Select(BitConverter.SingleToInt32Bits)));
        using var full = Tensor.Full([5, 3], -1.005, DType.BFloat16, CudaParity.Gpu);
        Assert.That(full.ToFloatArray(), Is.All.EqualTo(-1.0078125f));
    }

    [Test]
    public void DispatchAndCombineWithFloat32GatesMatchTheCpu()
    {
        int b = 37, e = 8, k = 2, d = 24;
        using var top = Tensor.FromArray(Enumerable.Range(0, b * k).Select(i => (i * 5 + i / k) % e).ToArray(), [b, k]);
        var x = Tensor.RandN([b, d], new Rng(11)).To(DType.BFloat16).RequireGrad();
        var gates = Tensor.Rand([b, e], new Rng(12)).RequireGrad();
        var xg = x.Detach().To(CudaParity.Gpu).RequireGrad();
        var gg = gates.Detach().To(CudaParity.Gpu).RequireGrad();
        Tensor Run(Tensor xs, Tensor gs, Tensor t)
        {
            using var routing = MoeOps.Route(t, e);
            var buf = MoeOps.Dispatch(xs, routing);
            var outs = new Tensor?[e];
            for (int i = 0; i < e; i++)
            {
                if (routing.Kept[i] == 0) continue;
                using var slice = buf.Narrow(0, routing.Starts[i], routing.Kept[i]);
                using var wide = Ops.Concat([slice, slice], 1);   // [n, 2d]: H ≠ D
                outs[i] = Ops.MulScalar(wide, 0.5 + i);
            }
            return MoeOps.Combine(outs, gs, t, routing);
        }
        var yc = Run(x, gates, top);
        var yg = Run(xg, gg, top.To(CudaParity.Gpu));
        Assert.That(yg.DType, Is.EqualTo(DType.BFloat16));
        CudaParity.AssertClose("combine", yc, yg, 1e-2);
        var w = Tensor.RandN(yc.Shape, new Rng(13)).To(DType.BFloat16);
        Ops.Sum(Ops.Mul(yc, w)).Backward();
        Ops.Sum(Ops.Mul(yg, w.To(CudaParity.Gpu))).Backward();
        CudaParity.AssertClose("d x (dispatch backward)", x.Grad!, xg.Grad!, 2e-2);
        Assert.That(gg.Grad!.DType, Is.EqualTo(DType.Float32), "the gates' gradient stays float32");
        CudaParity.AssertClose("d gates", gates.Grad!, gg.Grad!, 2e-2);
    }

    [Test]
    public void AnAutocastTrainingStepFollowsTheCpu()
    {
        // conv → BN+ReLU → conv → BN+add+ReLU → pool → linear → cross-entropy under bf16 autocast, then SGD.
        var shapes = new[] { new[] { 8, 3, 3, 3 }, new[] { 8, 8, 3, 3 }, new[] { 10, 8 } };
        Tensor[] Params(Device dev) => shapes.Select((s, i) => Tensor.RandN(s, new Rng((ulong)(20 + i))).To(dev).RequireGrad()).ToArray();
        double Step(Tensor[] p, Device dev)
        {
            using var scope = DisposeScope.Begin();
            var x = Tensor.RandN([4, 3, 12, 12], new Rng(30)).To(dev);
            var labels = Tensor.FromArray(new long[] { 1, 7, 3, 0 }, device: dev);
            Tensor loss;
            using (Autocast.Enter(DType.BFloat16))
            {
                var a = Ops.BatchNormRelu(Ops.Conv2d(x, p[0], padding: 1), null, null, Tensor.Zeros([8], device: dev), Tensor.Ones([8], device: dev), training: true);
                var c = Ops.BatchNormAddRelu(Ops.Conv2d(a, p[1], padding: 1), a, null, null, Tensor.Zeros([8], device: dev), Tensor.Ones([8], device: dev), training: true);
                var f = Ops.AdaptiveAvgPool2d(c, 1, 1).Flatten(1);
                loss = Ops.CrossEntropy(Ops.Linear(f, p[2]), labels);
            }
            loss.Backward();
            return loss.Item();
        }
        var pc = Params(Device.Cpu); var pg = Params(CudaParity.Gpu);
        double lc = Step(pc, Device.Cpu), lg = Step(pg, CudaParity.Gpu);
        Assert.That(lg, Is.EqualTo(lc).Within(2e-2 * Math.Abs(lc)), "loss");
        for (int i = 0; i < pc.Length; i++)
        {
            Assert.That(pg[i].Grad!.DType, Is.EqualTo(DType.Float32), "master weights' gradients are float32");
            CudaParity.AssertClose($"grad of parameter {i}", pc[i].Grad!, pg[i].Grad!, 5e-2);
        }
    }
}
