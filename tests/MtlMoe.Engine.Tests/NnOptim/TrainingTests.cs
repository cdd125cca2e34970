using MtlMoe.Engine;
using MtlMoe.Engine.NN;
using MtlMoe.Engine.Optim;

namespace MtlMoe.Tests.NnOptim;

/// <summary>Small end-to-end training loops: no leaks across steps, learning, and bit-reproducibility.</summary>
public class TrainingTests
{
    /// <summary>Two Gaussian blobs in 2-d, labels by blob; targets one-hot. x: [n, 2], y: [n, 2].</summary>
    private static (Tensor X, Tensor Y, int[] Labels) Blobs(int n, ulong seed)
    {
        var rng = new Rng(seed);
        var x = new float[n * 2]; var y = new float[n * 2]; var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            int c = i % 2;
            labels[i] = c;
            double cx = c == 0 ? -1.5 : 1.5, cy = c == 0 ? 1.0 : -1.0;
            x[2 * i] = (float)(cx + 0.5 * rng.NextGaussian());
            x[2 * i + 1] = (float)(cy + 0.5 * rng.NextGaussian());
            y[2 * i + c] = 1;
        }
        return (DisposeScope.Outside(() => Tensor.FromArray(x, [n, 2])), DisposeScope.Outside(() => Tensor.FromArray(y, [n, 2])), labels);
    }

    private static Sequential Mlp(ulong seed, int inF = 2, int hidden = 16, int outF = 2)
    {
        var rng = new Rng(seed);
        return new Sequential(new Linear(inF, hidden, rng: rng), new ReLU(), new Linear(hidden, outF, rng: rng));
    }

    /// <summary>One step inside a dispose scope: MSE to the target, backward, SGD update. Returns the loss.</summary>
    private static float Step(Module model, Optimizer opt, Tensor x, Tensor y)
    {
        using var scope = DisposeScope.Begin();
        var outp = model.Forward(x);       // [n, 2]
        var diff = Ops.Sub(outp, y);
        var sq = Ops.Mul(diff, diff);
        var loss = Ops.Mean(sq);
        opt.ZeroGrad();
        loss.Backward();
        opt.Step();
        return (float)loss.Item();
    }

    // Serial: it compares the process-wide live-tensor counters (MemoryStats) before and after, which parallel tests move.
    [Test, NonParallelizable]
    public void FiftyStepsDoNotLeakTensorsOrBytes()
    {
        var (x, y, _) = Blobs(32, 1);
        using var model = Mlp(2);
        using var opt = new SGD(model.Parameters(), 0.05, momentum: 0.9, weightDecay: 1e-4);
        long tensorsAt5 = 0, bytesAt5 = 0;
        for (int s = 1; s <= 50; s++)
        {
            Step(model, opt, x, y);
            if (s == 5) { tensorsAt5 = MemoryStats.LiveTensors; bytesAt5 = MemoryStats.LiveBytes; }
        }
        Assert.That(MemoryStats.LiveTensors, Is.EqualTo(tensorsAt5), "live tensors after step 50 vs step 5");
        Assert.That(MemoryStats.LiveBytes, Is.EqualTo(bytesAt5), "live bytes after step 50 vs step 5");
        model.ZeroGrad();
        x.Dispose(); y.Dispose();
    }

    private static (float[] Losses, double Accuracy) Train(ulong seed)
    {
        var (x, y, labels) = Blobs(200, seed);
        using var model = Mlp(seed + 1);
        using var opt = new SGD(model.Parameters(), 0.1, momentum: 0.9);
        var losses = new float[150];
        for (int s = 0; s < losses.Length; s++) losses[s] = Step(model, opt, x, y);
        double acc;
        using (var scope = DisposeScope.Begin())
        using (Engine.Autograd.GradMode.NoGrad())
        {
            var pred = Ops.ArgMax(model.Forward(x), 1).ToLongArray();
            acc = pred.Select((p, i) => p == labels[i] ? 1.0 : 0.0).Average();
        }
        model.ZeroGrad();
        x.Dispose(); y.Dispose();
        return (losses, acc);
    }

    [Test]
    public void MlpLearnsSeparableProblemReproducibly()
    {
        var (l1, acc1) = Train(7);
        var (l2, acc2) = Train(7);
        Assert.That(acc1, Is.GreaterThan(0.95), "training accuracy");
        Assert.That(l1[^1], Is.LessThan(l1[0] * 0.5f), "loss fell");
        Assert.That(l2, Is.EqualTo(l1), "same seed, bit-identical losses");
        Assert.That(acc2, Is.EqualTo(acc1));
    }
}
