using MtlMoe.Engine;
using MtlMoe.Engine.NN;
using MtlMoe.Engine.Optim;

namespace MtlMoe.Tests.EndToEnd;

/// <summary>A small CNN on a separable synthetic problem: learning, reproducibility, flat memory.</summary>
public class SmallCnnTests
{
    // 8×8 single-channel images: class 0 has a bright horizontal bar, class 1 a vertical one, at random
    // positions, on noise.
    private static (Tensor X, Tensor Y) MakeData(int n, ulong seed)
    {
        var rng = new Rng(seed);
        var x = new float[n * 64];
        var y = new long[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = i % 2;
            int pos = rng.NextInt(8);
            for (int p = 0; p < 64; p++) x[i * 64 + p] = (float)(0.3 * rng.NextGaussian());
            for (int t = 0; t < 8; t++)
            {
                int r = y[i] == 0 ? pos : t, c = y[i] == 0 ? t : pos;
                x[i * 64 + r * 8 + c] += 1.5f;
            }
        }
        return (Tensor.FromArray(x, [n, 1, 8, 8]), Tensor.FromArray(y));
    }

    private static Sequential MakeCnn(ulong seed)
    {
        var rng = new Rng(seed);
        return new Sequential(
            new Conv2d(1, 4, 3, padding: 1, rng: rng), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
            new Flatten(), new Linear(4 * 4 * 4, 2, rng: rng));
    }

    private static (List<double> Losses, double Accuracy) Train(int steps, ulong seed, Action<int>? afterStep = null)
    {
        var (x, y) = MakeData(64, seed);
        using var _x = x; using var _y = y;
        using var model = MakeCnn(seed);
        using var opt = new SGD(model.Parameters(), lr: 0.05, momentum: 0.9);
        var losses = new List<double>();
        for (int step = 0; step < steps; step++)
        {
            using (DisposeScope.Begin())
            {
                opt.ZeroGrad();
                var logits = model.Forward(x);
                var loss = Ops.CrossEntropy(logits, y);
                loss.Backward();
                opt.Step();
                losses.Add(loss.Item());
            }
            afterStep?.Invoke(step);
        }
        model.Eval();
        using var scope = DisposeScope.Begin();
        using var __ = MtlMoe.Engine.Autograd.GradMode.NoGrad();
        var pred = Ops.ArgMax(model.Forward(x), 1).ToLongArray();
        var labels = y.ToLongArray();
        double acc = pred.Zip(labels).Count(p => p.First == p.Second) / (double)labels.Length;
        return (losses, acc);
    }

    [Test]
    public void LearnsSeparableProblemAboveNinetyFivePercent()
    {
        var (losses, acc) = Train(60, seed: 7);
        Assert.That(acc, Is.GreaterThan(0.95), $"training accuracy {acc:P1}; losses {losses[0]:F3} → {losses[^1]:F3}");
        Assert.That(losses[^1], Is.LessThan(losses[0] * 0.5));
    }

    [Test]
    public void SameSeedGivesBitIdenticalLosses()
    {
        var a = Train(15, seed: 3).Losses;
        var b = Train(15, seed: 3).Losses;
        Assert.That(b.Select(BitConverter.DoubleToInt64Bits), Is.EqualTo(a.Select(BitConverter.DoubleToInt64Bits)));
    }

    // Serial: it compares the process-wide live-tensor counters (MemoryStats) before and after, which parallel tests move.
    [Test, NonParallelizable]
    public void FiftyTrainingStepsLeaveLiveCountersFlat()
    {
        long tensorsAt5 = 0, bytesAt5 = 0, tensorsAt50 = 0, bytesAt50 = 0;
        Train(50, seed: 11, afterStep: step =>
        {
            if (step == 4) { tensorsAt5 = MemoryStats.LiveTensors; bytesAt5 = MemoryStats.LiveBytes; }
            if (step == 49) { tensorsAt50 = MemoryStats.LiveTensors; bytesAt50 = MemoryStats.LiveBytes; }
        });
        Assert.That(tensorsAt50, Is.EqualTo(tensorsAt5), "live tensors grew between step 5 and step 50");
        Assert.That(bytesAt50, Is.EqualTo(bytesAt5), "live bytes grew between step 5 and step 50");
    }
}
