using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Bench.Workloads;

/// <summary>
/// float32 conv2d through the backend primitives, one JSON line per phase (forward, backward-data,
/// backward-weights). Default: 3×3, 64→64 channels, 56×56, batch 8, stride 1, padding kernel/2 (ResNet layer1).
/// <c>--device cuda</c> runs the CUDA backend (cuDNN; the algorithm search happens in the warm-up run), each run synchronised.
/// </summary>
public sealed class ConvBench : IWorkload
{
    /// <inheritdoc />
    public string Name => "conv";

    /// <inheritdoc />
    public string Description => "conv2d fwd / bwd-data / bwd-weights: --batch 8 --res 56 --cin 64 --cout 64 --kernel 3 --stride 1 [--groups 1] [--threads t] [--runs r] [--device cpu|cuda] [--tf32] [--ab NAME: alternate runs with that CPU path off/on; --help-ab lists the names]";

    /// <inheritdoc />
    public void Run(BenchOptions options, JsonLines output)
    {
        int n = options.Int("batch", 8), res = options.Int("res", 56), c = options.Int("cin", 64), k = options.Int("cout", 64);
        int kernel = options.Int("kernel", 3), stride = options.Int("stride", 1), groups = options.Int("groups", 1);
        if (options.Flag("help-ab"))
        {
            Console.Error.WriteLine("--ab NAME switches one CPU path off in every other run (the conv algorithm table's rows, the kernels' fast paths, earlier names):");
            foreach (var line in AbKnobs.Help()) Console.Error.WriteLine(line);
            return;
        }
        var cpu = BenchCpu.Options(options);
        int threads = cpu.Threads, runs = options.Int("runs", 5);
        if (n < 1 || res < 1 || c < 1 || k < 1 || kernel < 1 || stride < 1 || groups < 1 || c % groups != 0 || k % groups != 0)
            throw new ArgumentException("conv: sizes must be positive and groups must divide --cin and --cout");
        var geo = Conv2dGeometry.Square(stride, kernel / 2, 1, groups);
        int ho = geo.OutH(res, kernel), wo = geo.OutW(res, kernel);
        double flops = 2.0 * n * k * (c / groups) * kernel * kernel * ho * wo;

        var device = Device.Parse(options.Str("device", "cpu"));
        bool tf32 = options.Flag("tf32");
        string? ab = options.Flag("ab") ? options.Str("ab", "all") : null;
        using (BenchCpu.Use(cpu))
        using (device.Type == DeviceType.Cuda ? BackendRegistry.Use(((CudaBackend)BackendRegistry.Get(device)).With(new CudaBackendOptions { AllowTf32 = tf32 })) : null)
        {
            using var x = Tensor.Rand([n, c, res, res], new Rng(1), -1, 1, device: device);
            using var w = Tensor.Rand([k, c / groups, kernel, kernel], new Rng(2), -1, 1, device: device);
            using var dy = Tensor.Rand([n, k, ho, wo], new Rng(3), -1, 1, device: device);
            var be = x.Backend;
            var phases = new (string Name, Func<Storage> Body, int[] Shape)[]
            {
                ("forward", () => be.Conv2dForward(x.StorageView, w.StorageView, geo), [n, k, ho, wo]),
                ("backward-data", () => be.Conv2dBackwardData(dy.StorageView, w.StorageView, geo, x.Shape), x.Shape),
                ("backward-weights", () => be.Conv2dBackwardWeight(x.StorageView, dy.StorageView, geo, w.Shape), w.Shape),
            };
            foreach (var (phase, body, shape) in phases)
            {
                Console.Error.WriteLine($"conv {phase}: [{n}, {c}, {res}, {res}] * [{k}, {c / groups}, {kernel}, {kernel}] {geo}, {threads} threads, {device}");
                Action run = () => { using var t = Tensor.FromStorage(body(), shape); CudaProfiler.Synchronize(device); };
                if (ab is not null)
                {
                    var (off, on) = AbKnobs.MedianMs(ab, cpu, _ => run(), runs);
                    output.Write(new Dictionary<string, object?>
                    {
                        ["workload"] = "conv-ab", ["knob"] = ab, ["phase"] = phase, ["n"] = n, ["c"] = c, ["h"] = res, ["k"] = k, ["kernel"] = kernel,
                        ["stride"] = stride, ["threads"] = threads, ["ms_off"] = Timing.R(off), ["ms_on"] = Timing.R(on), ["speedup"] = Timing.R(off / on),
                        ["gflops_on"] = Timing.R(flops / (on * 1e6)),
                    });
                    continue;
                }
                double ms = Timing.MedianMs(run, warmup: 1, runs: runs);
                output.Write(new Dictionary<string, object?>
                {
                    ["workload"] = "conv", ["phase"] = phase, ["n"] = n, ["c"] = c, ["h"] = res, ["w"] = res, ["k"] = k,
                    ["kernel"] = kernel, ["stride"] = stride, ["groups"] = groups, ["threads"] = threads, ["device"] = device.ToString(), ["tf32"] = device.Type == DeviceType.Cuda ? tf32 : null,
                    ["ms"] = Timing.R(ms), ["gflops"] = Timing.R(flops / (ms * 1e6)),
                });
            }
        }
    }
}
