using MtlMoe.Engine;
using MtlMoe.Engine.NN;
using MtlMoe.Engine.Optim;

namespace MtlMoe.Tests.Cuda;

/// <summary>A few SGD steps of a small CNN on the CPU and on CUDA: the loss curves agree.</summary>
[Category("Cuda")]
[NonParallelizable] // one GPU context and stream, and the caching allocator's counters, shared by every CUDA test
public class CudaTrainingTests
{
    static List<double> Train(Device device, int steps)
    {
        var rng = new Rng(3);
        var x = Tensor.RandN([16, 3, 12, 12], new Rng(4)).To(device);
        var y = Tensor.FromArray(Enumerable.Range(0, 16).Select(i => (long)(i % 5)).ToArray()).To(device);
        using var model = new Sequential(
            new Conv2d(3, 8, 3, padding: 1, rng: rng), new BatchNorm2d(8), new ReLU(), new MaxPool2d(2),
            new Conv2d(8, 8, 3, stride: 2, padding: 1, rng: rng), new ReLU(), new AdaptiveAvgPool2d(1, 1),
            new Flatten(), new Linear(8, 5, rng: rng));
        model.To(device);
        using var opt = new SGD(model.Parameters(), lr: 0.1, momentum: 0.9);
        var losses = new List<double>();
        for (int s = 0; s < steps; s++)
        {
            using var scope = DisposeScope.Begin();
            opt.ZeroGrad();
            var loss = Ops.CrossEntropy(model.Forward(x), y);
            loss.Backward();
            opt.Step();
            losses.Add(loss.Item());
        }
        return losses;
    }

    [Test]
    public void SmallCnnLossCurveMatchesTheCpu()
    {
        CudaTestEnv.RequireCuda();
        var cpu = Train(Device.Cpu, 8);
        var gpu = Train(CudaParity.Gpu, 8);
        for (int i = 0; i < cpu.Count; i++)
        {
            Assert.That(double.IsFinite(gpu[i]), $"step {i}: GPU loss {gpu[i]}");
            Assert.That(Math.Abs(gpu[i] - cpu[i]), Is.LessThan(1e-3 * Math.Max(1, Math.Abs(cpu[i]))), $"step {i}: cpu {cpu[i]:F6} gpu {gpu[i]:F6}");
        }
        Assert.That(gpu[^1], Is.LessThan(gpu[0]), "the GPU run learns");
    }
}
