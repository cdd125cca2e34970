using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.NN;
using MtlMoe.Model.Backbone;

namespace MtlMoe.Tests.Backbone;

/// <summary>
/// Residual blocks give the same outputs and gradients with the CPU backend's fused batch-norm + add + ReLU tail as with
/// the tail composed from three primitives ("bn-add-relu-fused" switched off on a backend of the test's own).
/// </summary>
public class FusedTailTests
{
    [Test]
    public void BlocksMatchUnfusedTail()
    {
        Module[] blocks = [new BasicBlock(4, 4, 1, new Rng(3)), new BasicBlock(4, 8, 2, new Rng(4)), new Bottleneck(8, 2, 1, new Rng(5)), new Bottleneck(4, 2, 2, new Rng(6))];
        int[] inCh = [4, 4, 8, 4];
        try
        {
            for (int b = 0; b < blocks.Length; b++)
            {
                (double[] Y, double[] Dx, double[] DwSum) Run(bool fused)
                {
                    var options = CpuBackendOptions.Defaults;
                    using var backend = BackendRegistry.Use(new CpuBackend(fused ? options : options.Disable("bn-add-relu-fused")));
                    using var x = Tensor.Rand([2, inCh[b], 6, 6], new Rng(9), -1, 1).RequireGrad();
                    using var y = blocks[b].Forward(x);
                    using var loss = Ops.Sum(y);
                    loss.Backward();
                    var dw = blocks[b].NamedParameters().Select(p => p.Tensor.Grad!.ToDoubleArray().Sum()).ToArray();
                    foreach (var p in blocks[b].NamedParameters()) p.Tensor.ZeroGrad();
                    return (y.ToDoubleArray(), x.Grad!.ToDoubleArray(), dw);
                }
                var f = Run(true); var e = Run(false);
                Assert.That(f.Y, Is.EqualTo(e.Y), $"block {b}: y");
                Assert.That(f.Y.Count(v => v == 0), Is.GreaterThan(0), $"block {b}: some outputs clamped");
                Assert.That(f.Dx, Is.EqualTo(e.Dx).Within(1e-5), $"block {b}: dx");
                Assert.That(f.DwSum, Is.EqualTo(e.DwSum).Within(1e-4), $"block {b}: parameter gradients");
            }
        }
        finally { foreach (var m in blocks) m.Dispose(); }
    }
}
