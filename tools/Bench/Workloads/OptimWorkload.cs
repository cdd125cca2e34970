using MtlMoe.Engine;
using MtlMoe.Engine.Optim;

namespace MtlMoe.Bench.Workloads;

/// <summary>Fused optimizer updates (SGD with momentum, AdamW) against the same update composed from ops.</summary>
public sealed class OptimWorkload : IWorkload
{
    /// <inheritdoc />
    public string Name => "optim";

    /// <inheritdoc />
    public string Description => "fused SGD/AdamW step vs composed ops, float32 (--sizes 1048576,25000000) [--threads t]";

    /// <inheritdoc />
    public void Run(BenchOptions options, JsonLines output)
    {
        var cpu = BenchCpu.Options(options);
        using var _ = BenchCpu.Use(cpu);
        foreach (int n in options.Ints("sizes", [1 << 20, 25_000_000]))
        {
            using var p = Tensor.Rand([n], new Rng(1), -1, 1).RequireGrad();
            p.Grad = DisposeScope.Outside(() => Tensor.Rand([n], new Rng(2), -1, 1));
            using (var sgd = new SGD([p], 1e-3, momentum: 0.9, weightDecay: 1e-4))
                Report(output, cpu.Threads, "sgd_momentum_fused", n, Timing.MedianMs(sgd.Step), bytesPerElem: 4 * 5); // read p, g, buf; write p, buf
            using (var adam = new AdamW([p], 1e-3))
                Report(output, cpu.Threads, "adamw_fused", n, Timing.MedianMs(adam.Step), bytesPerElem: 4 * 7); // read p, g, m, v; write p, m, v
            using var buf = Tensor.Zeros([n]);
            Report(output, cpu.Threads, "sgd_momentum_composed", n, Timing.MedianMs(() => ComposedSgd(p, p.Grad!, buf)), bytesPerElem: 4 * 5);
            p.ZeroGrad();
        }
    }

    private static void ComposedSgd(Tensor p, Tensor g, Tensor buf)
    {
        using var scope = DisposeScope.Begin();
        using var _ = MtlMoe.Engine.Autograd.GradMode.NoGrad();
        var d = Ops.Add(g, Ops.MulScalar(p, 1e-4));
        var nb = Ops.Add(Ops.MulScalar(buf, 0.9), d);
        buf.CopyFrom(nb);
        p.CopyFrom(Ops.Sub(p, Ops.MulScalar(nb, 1e-3)));
    }

    private static void Report(JsonLines output, int threads, string what, int n, double ms, int bytesPerElem) =>
        output.Write(new Dictionary<string, object?>
        {
            ["workload"] = "optim", ["op"] = what, ["elements"] = n, ["median_ms"] = Timing.R(ms),
            ["gb_per_s"] = Timing.R((double)n * bytesPerElem / (ms * 1e6)), ["threads"] = threads,
        });
}
