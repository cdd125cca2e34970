using MtlMoe.Engine;
using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Bench.Workloads;

/// <summary>
/// float32 batch-norm (training) on the CPU, one JSON line per phase: "bn-forward" (Ops.BatchNorm2d, no graph),
/// "tail-forward" (relu(bn(x) + r), no graph) and "tail" (relu(bn(x) + r) forward and backward: fused, or composed by the
/// backend when "bn-add-relu-fused" is off). Default: batch 16, 64 channels, 28×28 (ResNet-18 layer1 at 112² input).
/// <c>--ab bn-stats-one-pass|bn-add-relu-fused|all</c> (or any path name) alternates runs.
/// </summary>
public sealed class BatchNormBench : IWorkload
{
    /// <inheritdoc />
    public string Name => "batchnorm";

    /// <inheritdoc />
    public string Description => "batch-norm fwd and residual tail fwd+bwd: --batch 16 --channels 64 --res 28 [--threads t] [--runs r] [--ab NAME: bn-stats-one-pass, bn-add-relu-fused, all, … (see conv --help-ab)]";

    /// <inheritdoc />
    public void Run(BenchOptions options, JsonLines output)
    {
        int n = options.Int("batch", 16), c = options.Int("channels", 64), res = options.Int("res", 28);
        var cpu = BenchCpu.Options(options);
        int threads = cpu.Threads, runs = options.Int("runs", 15);
        if (n < 1 || c < 1 || res < 1) throw new ArgumentException("batchnorm: sizes must be positive");
        string? ab = options.Flag("ab") ? options.Str("ab", "all") : null;
        using (BenchCpu.Use(cpu))
        {
            using var x = Tensor.Rand([n, c, res, res], new Rng(1), -1, 1).RequireGrad();   // x, r, dy: [N, C, H, W]
            using var r = Tensor.Rand([n, c, res, res], new Rng(2), -1, 1).RequireGrad();
            using var dy = Tensor.Rand([n, c, res, res], new Rng(3), -1, 1);
            using var wt = Tensor.Ones([c]).RequireGrad(); using var bs = Tensor.Zeros([c]).RequireGrad();
            using var rm = Tensor.Zeros([c]); using var rv = Tensor.Ones([c]);
            var phases = new (string Name, Action Body)[]
            {
                ("bn-forward", () => { using var _ = GradMode.NoGrad(); using var y = Ops.BatchNorm2d(x, wt, bs, rm, rv, training: true); }),
                ("tail-forward", () =>
                {
                    using var _ = GradMode.NoGrad();
                    using var y = Ops.BatchNormAddRelu(x, r, wt, bs, rm, rv, training: true);
                }),
                ("tail", () =>
                {
                    using (var y = Ops.BatchNormAddRelu(x, r, wt, bs, rm, rv, training: true)) y.Backward(dy);
                    x.ZeroGrad(); r.ZeroGrad(); wt.ZeroGrad(); bs.ZeroGrad();
                }),
            };
            foreach (var (phase, body) in phases)
            {
                Console.Error.WriteLine($"batchnorm {phase}: [{n}, {c}, {res}, {res}], {threads} threads, cpu");
                if (ab is not null)
                {
                    var (off, on) = AbKnobs.MedianMs(ab, cpu, _ => body(), runs);
                    output.Write(new Dictionary<string, object?>
                    {
                        ["workload"] = "batchnorm-ab", ["knob"] = ab, ["phase"] = phase, ["n"] = n, ["c"] = c, ["h"] = res, ["threads"] = threads,
                        ["ms_off"] = Timing.R(off), ["ms_on"] = Timing.R(on), ["speedup"] = Timing.R(off / on),
                    });
                    continue;
                }
                output.Write(new Dictionary<string, object?>
                {
                    ["workload"] = "batchnorm", ["phase"] = phase, ["n"] = n, ["c"] = c, ["h"] = res, ["threads"] = threads,
                    ["ms"] = Timing.R(Timing.MedianMs(body, warmup: 1, runs: runs)),
                });
            }
        }
    }
}
