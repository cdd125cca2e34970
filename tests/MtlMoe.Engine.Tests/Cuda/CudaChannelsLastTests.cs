using MtlMoe.Engine;
using MtlMoe.Engine.Amp;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Tests.Cuda;

/// <summary>
/// Channels-last (CudaBackendOptions.ChannelsLast): a training step's forward and gradients equal the NCHW backend's
/// (float32: to float32 tolerance; bf16 autocast: to bf16 tolerance), and NHWC storages read as NCHW by any other op.
/// </summary>
[Category("Cuda")]
[NonParallelizable] // one GPU context and stream, and the caching allocator's counters, shared by every CUDA test
public class CudaChannelsLastTests
{
    [SetUp]
    public void RequireCuda() => CudaTestEnv.RequireCuda();

    static Device Gpu => CudaParity.Gpu;

    static (double Loss, Tensor[] Grads, Tensor Features) Step(bool channelsLast, bool amp)
    {
        var cuda = (CudaBackend)BackendRegistry.Get(Gpu);
        using var _ = BackendRegistry.Use(cuda.With(new CudaBackendOptions { ChannelsLast = channelsLast }));
        int[][] shapes = [[16, 3, 3, 3], [16, 16, 3, 3], [16, 16, 1, 1], [10, 16]];
        var p = shapes.Select((s, i) => Tensor.RandN(s, new Rng((ulong)(80 + i))).To(Gpu).RequireGrad()).ToArray();
        var x = Tensor.RandN([4, 3, 20, 20], new Rng(90)).To(Gpu);
        var labels = Tensor.FromArray(new long[] { 1, 7, 3, 0 }, device: Gpu);
        Tensor loss, feat;
        using (amp ? Autocast.Enter(DType.BFloat16) : null)
        {
            var a = Ops.BatchNormRelu(Ops.Conv2d(x, p[0], padding: 1, stride: 2), null, null, Tensor.Zeros([16], device: Gpu), Tensor.Ones([16], device: Gpu), training: true);
            var b = Ops.BatchNormRelu(Ops.Conv2d(a, p[1], padding: 1), null, null, Tensor.Zeros([16], device: Gpu), Tensor.Ones([16], device: Gpu), training: true);
            var c = Ops.BatchNormAddRelu(Ops.Conv2d(b, p[2]), a, null, null, Tensor.Zeros([16], device: Gpu), Tensor.Ones([16], device: Gpu), training: true);
            feat = Ops.MaxPool2d(c, 3, 2, 1);                    // an edge: pooling reads NCHW
            var f = Ops.AdaptiveAvgPool2d(feat, 1, 1).Flatten(1);
            loss = Ops.CrossEntropy(Ops.Linear(f, p[3]), labels);
        }
        loss.Backward();
        return (loss.Item(), p.Select(t => t.Grad!).ToArray(), feat.To(DType.Float32));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void AStepMatchesTheNchwStep(bool amp)
    {
        var (l0, g0, f0) = Step(channelsLast: false, amp);
        var (l1, g1, f1) = Step(channelsLast: true, amp);
        double tol = amp ? 2e-2 : 1e-4;
        Assert.That(l1, Is.EqualTo(l0).Within(tol * Math.Abs(l0)), "loss");
        CudaParity.AssertClose("pooled features", f0, f1, tol);
        for (int i = 0; i < g0.Length; i++) CudaParity.AssertClose($"grad of parameter {i}", g0[i], g1[i], amp ? 5e-2 : 1e-4);
    }

    [Test]
    public void AChannelsLastStorageReadsAsNchwEverywhereElse()
    {
        var cuda = (CudaBackend)BackendRegistry.Get(Gpu);
        var x = Tensor.RandN([2, 5, 7, 6], new Rng(91));
        var w = Tensor.RandN([4, 5, 3, 3], new Rng(92));
        using var reference = Ops.Conv2d(x, w, padding: 1);     // on the CPU
        Tensor y;
        using (BackendRegistry.Use(cuda.With(new CudaBackendOptions { ChannelsLast = true })))
            y = Ops.Conv2d(x.To(Gpu), w.To(Gpu), padding: 1); // held as NHWC
        // Read back, sliced and reduced by ops that know nothing of NHWC: all see the NCHW tensor.
        CudaParity.AssertClose("download", reference, y, 1e-4);
        CudaParity.AssertClose("a slice", reference.Narrow(1, 1, 2).Contiguous(), y.Narrow(1, 1, 2).Contiguous(), 1e-4);
        CudaParity.AssertClose("a sum over H, W", Ops.Sum(reference, [2, 3]), Ops.Sum(y, [2, 3]), 1e-4);
    }
}
