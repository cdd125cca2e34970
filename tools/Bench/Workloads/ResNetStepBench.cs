using MtlMoe.Engine;
using MtlMoe.Engine.Amp;
using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cuda;
using MtlMoe.Engine.Optim;
using MtlMoe.Model.Backbone;

namespace MtlMoe.Bench.Workloads;

/// <summary>
/// One full training step of a ResNet (forward, cross-entropy, backward, SGD momentum update) on random images: the
/// end-to-end yardstick, and the row the PyTorch side-by-side compares (tools/gpu-bundle/ratio_table.py). Options:
/// <c>--depth 18|34|50</c>, <c>--amp bf16</c> (bf16 autocast around forward and loss, as a PyTorch AMP step; on the CPU
/// the bf16 reference ops: correct, slower than float32), and on a GPU <c>--tf32</c>, <c>--channels-last</c> (NHWC
/// activations, CudaBackendOptions.ChannelsLast) and <c>--graph</c> (the step captured once as a CUDA graph after two
/// eager warm-up steps, then replayed: same kernels, one launch).
/// </summary>
public class ResNetStepBench : IWorkload
{
    /// <summary>Depth when --depth is not given.</summary>
    protected virtual int DefaultDepth => 18;
    /// <summary>Batch when --batch is not given.</summary>
    protected virtual int DefaultBatch => 16;
    /// <summary>Resolution when --res is not given.</summary>
    protected virtual int DefaultRes => 112;

    /// <inheritdoc />
    public virtual string Name => "resnet18-step";

    /// <inheritdoc />
    public virtual string Description => $"ResNet training step (SGD momentum): --batch {DefaultBatch} --res {DefaultRes} --classes 200 [--depth 18|34|50] " +
        "[--amp off|bf16: bf16 autocast; on the CPU the bf16 reference ops, correct but slower than float32] [--threads t] [--runs r] " +
        "[--device cpu|cuda] [--tf32] [--channels-last] [--graph: CUDA graph replay] [--ab NAME: one CPU path off/on, alternating (conv --help-ab lists the names)]";

    /// <inheritdoc />
    public void Run(BenchOptions options, JsonLines output)
    {
        int batch = options.Int("batch", DefaultBatch), res = options.Int("res", DefaultRes), classes = options.Int("classes", 200);
        int depth = options.Int("depth", DefaultDepth);
        var cpu = BenchCpu.Options(options);
        int threads = cpu.Threads, runs = options.Int("runs", 5);
        var device = Device.Parse(options.Str("device", "cpu"));
        string amp = options.Str("amp", "off");
        bool tf32 = options.Flag("tf32"), channelsLast = options.Flag("channels-last"), graph = options.Flag("graph");
        if (batch < 1 || res < 32 || classes < 2) throw new ArgumentException($"{Name}: --batch ≥ 1, --res ≥ 32, --classes ≥ 2");
        if (amp is not ("off" or "bf16")) throw new ArgumentException($"{Name}: --amp must be off or bf16, got '{amp}'");
        var resnet = depth switch
        {
            18 => ResNetDepth.ResNet18, 34 => ResNetDepth.ResNet34, 50 => ResNetDepth.ResNet50,
            _ => throw new ArgumentException($"{Name}: --depth must be 18, 34 or 50, got {depth}"),
        };
        bool cuda = device.Type == DeviceType.Cuda;
        if (!cuda && (tf32 || channelsLast || graph))
            throw new ArgumentException($"{Name}: --tf32, --channels-last and --graph are GPU options (the CPU backend computes NCHW float32 eagerly); add --device cuda");
        string workload = $"resnet{depth}-step";

        using (BenchCpu.Use(cpu))
        using (cuda ? BackendRegistry.Use(((CudaBackend)BackendRegistry.Get(device)).With(new CudaBackendOptions { AllowTf32 = tf32, ChannelsLast = channelsLast })) : null)
        {
            using var model = new ResNet(resnet, classes, rng: new Rng(1));
            model.To(device);
            using var opt = new SGD(model.Parameters(), lr: 0.01, momentum: 0.9, weightDecay: 5e-4);
            using var x = Tensor.RandN([batch, 3, res, res], new Rng(2)).To(device);
            var labelValues = new long[batch];
            for (int i = 0; i < batch; i++) labelValues[i] = i % classes;
            using var y = Tensor.FromArray(labelValues, null, device);
            Console.Error.WriteLine($"{workload}: batch {batch}, {res}×{res}, {classes} classes, {model.ParameterCount():N0} parameters, {threads} threads, {device}" +
                $"{(amp == "bf16" ? ", bf16 autocast" : "")}{(tf32 ? ", TF32" : "")}{(channelsLast ? ", channels-last" : "")}{(graph ? ", CUDA graph" : "")}");

            Tensor Body()
            {
                opt.ZeroGrad();
                Tensor loss;
                using (amp == "bf16" ? Autocast.Enter(DType.BFloat16) : null)
                {
                    var logits = model.Forward(x);
                    loss = Ops.CrossEntropy(logits, y);
                }
                loss.Backward();
                opt.Step();
                return loss;
            }
            void Step()
            {
                using var scope = DisposeScope.Begin();
                _ = Body().Item(); // waits for the device
            }
            // Warm-up outside the timing so that an op profile (MTLMOE_PROFILE=1) covers the timed steps only.
            Step(); Step();
            OpProfile.Reset();
            OpProfile.Mark();
            string? ab = options.Flag("ab") ? options.Str("ab", "all") : null;
            if (ab is not null)
            {
                if (cuda) throw new ArgumentException($"{Name}: --ab switches CPU paths; it has no meaning with --device cuda");
                var (off, on) = AbKnobs.MedianMs(ab, cpu, _ => Step(), runs);
                output.Write(new Dictionary<string, object?>
                {
                    ["workload"] = workload + "-ab", ["knob"] = ab, ["batch"] = batch, ["res"] = res, ["threads"] = threads,
                    ["ms_off"] = Timing.R(off), ["ms_on"] = Timing.R(on), ["speedup"] = Timing.R(off / on),
                });
                return;
            }
            double ms;
            int? nodes = null;
            if (graph)
            {
                var be = (CudaBackend)BackendRegistry.Get(device);
                using var kept = DisposeScope.Begin();   // the captured step's tensors live as long as the graph
                Tensor? loss = null;
                using var g = CudaGraph.Capture(be, () => loss = Body());
                nodes = g.NodeCount;
                Console.Error.WriteLine($"{workload}: captured {g.NodeCount} graph nodes, {g.ReservedBlocks} reserved blocks");
                ms = Timing.MedianMs(() => { g.Replay(); be.Synchronize(); }, warmup: 1, runs: runs);
                Console.Error.WriteLine($"{workload}: last replayed loss {loss!.Item():G6}");
            }
            else ms = Timing.MedianMs(Step, warmup: 0, runs: runs);
            if (OpProfile.Enabled) Console.Error.WriteLine($"op profile: totals over {Math.Max(runs, 5)} timed steps");
            output.Write(new Dictionary<string, object?>
            {
                ["workload"] = workload, ["depth"] = depth, ["batch"] = batch, ["res"] = res, ["classes"] = classes, ["threads"] = threads,
                ["device"] = device.ToString(), ["amp"] = amp == "bf16" ? "bf16" : null, ["tf32"] = cuda ? tf32 : null,
                ["channels_last"] = cuda ? channelsLast : null, ["graph"] = cuda ? graph : null, ["graph_nodes"] = nodes,
                ["ms"] = Timing.R(ms), ["images_per_s"] = Timing.R(batch * 1000.0 / ms, 1),
            });
        }
    }
}

/// <summary>
/// ResNet-50's training step, by default at batch 16 and 448×448 (the CUB recipe's shape, where the issue's target is
/// set against PyTorch's eager AMP channels-last step); the same options as <c>resnet18-step</c>.
/// </summary>
public sealed class ResNet50StepBench : ResNetStepBench
{
    /// <inheritdoc />
    protected override int DefaultDepth => 50;
    /// <inheritdoc />
    protected override int DefaultRes => 448;
    /// <inheritdoc />
    public override string Name => "resnet50-step";
}
