using MtlMoe.Engine;

namespace MtlMoe.Tests.ConvNorm;

/// <summary>A training step of conv/batch-norm/pooling under a dispose scope leaves nothing alive (buffers are updated in place).</summary>
public class LifetimeTests
{
    // Serial: it compares the process-wide live-tensor counters (MemoryStats) before and after, which parallel tests move.
    [Test, NonParallelizable]
    public void ForwardBackwardLeavesNothingAlive()
    {
        using var x = Tensor.Rand([2, 3, 8, 8], new Rng(1), -1, 1).RequireGrad();
        using var w = Tensor.Rand([4, 3, 3, 3], new Rng(2), -1, 1).RequireGrad();
        using var b = Tensor.Zeros([4]).RequireGrad();
        using var gamma = Tensor.Ones([4]).RequireGrad();
        using var beta = Tensor.Zeros([4]).RequireGrad();
        using var rm = Tensor.Zeros([4]); using var rv = Tensor.Ones([4]);
        long tensors = MemoryStats.LiveTensors, bytes = MemoryStats.LiveBytes;
        for (int step = 0; step < 2; step++)
        {
            using (DisposeScope.Begin())
            {
                var y = Ops.Conv2d(x, w, b, padding: 1);
                var n = Ops.BatchNorm2d(y, gamma, beta, rm, rv, training: step == 0);
                var p = Ops.MaxPool2d(n, 2);
                var a = Ops.AvgPool2d(p, 2);
                var g = Ops.AdaptiveAvgPool2d(a, 1, 1);
                var loss = Ops.Sum(g);
                loss.Backward();
            }
            foreach (var t in new[] { x, w, b, gamma, beta })
            {
                Assert.That(t.Grad, Is.Not.Null);
                t.ZeroGrad();
            }
        }
        Assert.That(MemoryStats.LiveTensors, Is.EqualTo(tensors));
        Assert.That(MemoryStats.LiveBytes, Is.EqualTo(bytes));
    }
}
