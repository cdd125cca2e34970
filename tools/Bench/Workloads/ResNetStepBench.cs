using MtlMoe.Engine;
using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Optim;
using MtlMoe.Model.Backbone;

namespace MtlMoe.Bench.Workloads;

/// <summary>
/// One full training step of ResNet-18 (forward, cross-entropy, backward, SGD momentum update) on random
/// images: the end-to-end yardstick for the CPU backend. Default batch 16 at 112×112, 200 classes.
/// </summary>
public sealed class ResNetStepBench : IWorkload
{
    /// <inheritdoc />
    public string Name => "resnet18-step";

    /// <inheritdoc />
    public string Description => "ResNet-18 training step (SGD momentum): --batch 16 --res 112 --classes 200 [--threads t] [--runs r] [--device cpu|cuda] [--ab NAME: one CPU path off/on, alternating (conv --help-ab lists the names)]";

    /// <inheritdoc />
    public void Run(BenchOptions options, JsonLines output)
    {
        int batch = options.Int("batch", 16), res = options.Int("res", 112), classes = options.Int("classes", 200);
        var cpu = BenchCpu.Options(options);
        int threads = cpu.Threads, runs = options.Int("runs", 5);
        var device = Device.Parse(options.Str("device", "cpu"));
        if (batch < 1 || res < 32 || classes < 2) throw new ArgumentException("resnet18-step: --batch ≥ 1, --res ≥ 32, --classes ≥ 2");

        using (BenchCpu.Use(cpu))
        {
            using var model = new ResNet(ResNetDepth.ResNet18, classes, rng: new Rng(1));
            model.To(device);
            using var opt = new SGD(model.Parameters(), lr: 0.01, momentum: 0.9, weightDecay: 5e-4);
            using var x = Tensor.RandN([batch, 3, res, res], new Rng(2)).To(device);
            var labelValues = new long[batch];
            for (int i = 0; i < batch; i++) labelValues[i] = i % classes;
            using var y = Tensor.FromArray(labelValues, null, device);
            Console.Error.WriteLine($"resnet18-step: batch {batch}, {res}×{res}, {classes} classes, {model.ParameterCount():N0} parameters, {threads} threads, {device}");

            void Step()
            {
                using var scope = DisposeScope.Begin();
                opt.ZeroGrad();
                var logits = model.Forward(x);
                var loss = Ops.CrossEntropy(logits, y);
                loss.Backward();
                opt.Step();
                _ = loss.Item(); // waits for the device
            }
            // Warm-up outside the timing so that an op profile (MTLMOE_PROFILE=1) covers the timed steps only.
            Step(); Step();
            OpProfile.Reset();
            OpProfile.Mark();
            string? ab = options.Flag("ab") ? options.Str("ab", "all") : null;
            if (ab is not null)
            {
                var (off, on) = AbKnobs.MedianMs(ab, cpu, _ => Step(), runs);
                output.Write(new Dictionary<string, object?>
                {
                    ["workload"] = "resnet18-step-ab", ["knob"] = ab, ["batch"] = batch, ["res"] = res, ["threads"] = threads,
                    ["ms_off"] = Timing.R(off), ["ms_on"] = Timing.R(on), ["speedup"] = Timing.R(off / on),
                });
                return;
            }
            double ms = Timing.MedianMs(Step, warmup: 0, runs: runs);
            if (OpProfile.Enabled) Console.Error.WriteLine($"op profile: totals over {Math.Max(runs, 5)} timed steps");
            output.Write(new Dictionary<string, object?>
            {
                ["workload"] = "resnet18-step", ["batch"] = batch, ["res"] = res, ["classes"] = classes, ["threads"] = threads,
                ["device"] = device.ToString(), ["ms"] = Timing.R(ms), ["images_per_s"] = Timing.R(batch * 1000.0 / ms, 1),
            });
        }
    }
}
