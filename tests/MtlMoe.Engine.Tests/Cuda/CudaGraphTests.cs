using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cuda;
using MtlMoe.Engine.Optim;

namespace MtlMoe.Tests.Cuda;

/// <summary>
/// A whole training step (forward, loss, backward, SGD) captured as a CUDA graph: its replays give the losses the same
/// steps give eagerly, and what a graph cannot hold (host reads) is refused with a clear error.
/// </summary>
[Category("Cuda")]
[NonParallelizable] // one GPU context and stream, and the caching allocator's counters, shared by every CUDA test
public class CudaGraphTests
{
    [SetUp]
    public void RequireCuda() => CudaTestEnv.RequireCuda();

    static Device Gpu => CudaParity.Gpu;

    // conv → BN+ReLU → conv → BN+add+ReLU → pool → linear → cross-entropy; SGD with momentum (a constant rate).
    sealed class Net : IDisposable
    {
        public readonly Tensor[] P;
        public readonly Tensor M1, V1, M2, V2;
        public Net()
        {
            int[][] shapes = [[8, 3, 3, 3], [8, 8, 3, 3], [10, 8]];
            P = shapes.Select((s, i) => Tensor.RandN(s, new Rng((ulong)(60 + i))).To(Gpu).RequireGrad()).ToArray();
            M1 = Tensor.Zeros([8], device: Gpu); V1 = Tensor.Ones([8], device: Gpu);
            M2 = Tensor.Zeros([8], device: Gpu); V2 = Tensor.Ones([8], device: Gpu);
        }

        public Tensor Loss(Tensor x, Tensor labels)
        {
            var a = Ops.BatchNormRelu(Ops.Conv2d(x, P[0], padding: 1), null, null, M1, V1, training: true);
            var c = Ops.BatchNormAddRelu(Ops.Conv2d(a, P[1], padding: 1), a, null, null, M2, V2, training: true);
            var f = Ops.AdaptiveAvgPool2d(c, 1, 1).Flatten(1);
            return Ops.CrossEntropy(Ops.Linear(f, P[2]), labels);
        }

        public void Dispose() { foreach (var t in P.Append(M1).Append(V1).Append(M2).Append(V2)) t.Dispose(); }
    }

    [Test]
    public void ReplaysGiveTheEagerLosses()
    {
        using var x = Tensor.RandN([8, 3, 16, 16], new Rng(70)).To(Gpu);
        using var labels = Tensor.FromArray(new long[] { 1, 7, 3, 0, 9, 2, 2, 5 }, device: Gpu);
        const int steps = 6, warm = 2;

        // Eager: six steps.
        var eager = new List<double>();
        using (var net = new Net())
        using (var sgd = new SGD(net.P, 0.05, momentum: 0.9))
            for (int i = 0; i < steps; i++)
            {
                using var scope = DisposeScope.Begin();
                sgd.ZeroGrad();
                var loss = net.Loss(x, labels);
                loss.Backward();
                sgd.Step();
                eager.Add(loss.Item());
            }

        // Two eager warm-up steps (the cache then holds every block size; cuDNN's searches are done), then one capture
        // of the step and four replays.
        var replayed = new List<double>();
        var be = (CudaBackend)BackendRegistry.Get(Gpu);
        using (var net = new Net())
        using (var sgd = new SGD(net.P, 0.05, momentum: 0.9))
        {
            void Step(out Tensor loss)
            {
                sgd.ZeroGrad();
                loss = net.Loss(x, labels);
                loss.Backward();
                sgd.Step();
            }
            for (int i = 0; i < warm; i++)
            {
                using var scope = DisposeScope.Begin();
                Step(out var l);
                replayed.Add(l.Item());
            }
            Tensor? lossOut = null;
            var scopeOuter = DisposeScope.Begin();   // the captured step's tensors live as long as the graph
            using var graph = CudaGraph.Capture(be, () => Step(out lossOut));
            TestContext.Out.WriteLine($"captured {graph.NodeCount} nodes, {graph.ReservedBlocks} reserved blocks");
            Assert.That(graph.NodeCount, Is.GreaterThan(10));
            for (int i = warm; i < steps; i++)
            {
                graph.Replay();
                replayed.Add(lossOut!.Item());
            }
            graph.Dispose();
            scopeOuter.Dispose();
        }
        TestContext.Out.WriteLine("eager:    " + string.Join(" ", eager.Select(v => v.ToString("R"))));
        TestContext.Out.WriteLine("replayed: " + string.Join(" ", replayed.Select(v => v.ToString("R"))));
        Assert.That(replayed.Take(warm), Is.EqualTo(eager.Take(warm)), "the eager warm-up steps");
        for (int i = warm; i < steps; i++)
            Assert.That(replayed[i], Is.EqualTo(eager[i]).Within(1e-5 * Math.Abs(eager[i])), $"step {i + 1}: replay vs eager");
        Assert.That(eager[^1], Is.Not.EqualTo(eager[warm]), "the replays must have trained (the losses move)");
    }

    [Test]
    public void ReadingAValueInsideACaptureIsRefused()
    {
        var be = (CudaBackend)BackendRegistry.Get(Gpu);
        using var x = Tensor.RandN([64], new Rng(71)).To(Gpu);
        using (var warm = Ops.MulScalar(x, 2)) { }   // the block size is cached
        var e = Assert.Throws<GraphCaptureException>(() => CudaGraph.Capture(be, () =>
        {
            using var y = Ops.MulScalar(x, 2);
            _ = y.Item();
        }).Dispose());
        Assert.That(e!.Message, Does.Contain("device-to-host copy").And.Contain("MoE"));
        Assert.That(be.Context.Allocator.Capturing, Is.False, "the failed capture was ended");
        using var z = Ops.MulScalar(x, 3);   // the stream works normally again
        Assert.That(z.ToArray<float>()[0], Is.EqualTo(3 * x.ToArray<float>()[0]));
    }
}
