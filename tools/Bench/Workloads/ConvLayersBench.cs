using System.Diagnostics;
using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Bench.Workloads;

/// <summary>
/// The per-layer channels-last check of the first GPU call: every distinct convolution of a ResNet at one batch and
/// resolution, forward + backward-data + backward-weights through cuDNN, in NCHW and in NHWC (the CUDA backend's
/// ChannelsLast option; the NHWC input is prepared outside the timing, the filter's KCRS → KRSC copy is inside, as in a
/// training step), in float32 or bf16. One JSON line per layer with both times and their ratio, and a total line: where
/// NHWC loses, the layer list says which shapes to keep in NCHW.
/// </summary>
public sealed class ConvLayersBench : IWorkload
{
    /// <inheritdoc />
    public string Name => "conv-layers";

    /// <inheritdoc />
    public string Description => "every ResNet conv, NCHW vs NHWC (fwd+bwd): --depth 50 --batch 16 --res 448 [--dtype bf16|f32] [--runs r] --device cuda";

    sealed record Layer(string Name, int C, int H, int O, int K, int Stride, int Pad);

    // The convolutions of torchvision's ResNet (width 1) for an input of res × res: (name, in channels, in size, out
    // channels, kernel, stride, padding); repeated blocks of one stage share shapes and are listed once.
    static IEnumerable<Layer> Layers(int depth, int res)
    {
        int[] blocks = depth switch { 18 => [2, 2, 2, 2], 34 or 50 => [3, 4, 6, 3], _ => throw new ArgumentException($"conv-layers: --depth must be 18, 34 or 50, got {depth}") };
        bool bottleneck = depth == 50;
        yield return new("conv1", 3, res, 64, 7, 2, 3);
        int h = (res + 6 - 7) / 2 + 1;
        h = (h + 2 - 3) / 2 + 1;   // the stem's max-pool
        int inPlanes = 64, expansion = bottleneck ? 4 : 1;
        for (int s = 0; s < 4; s++)
        {
            int p = 64 << s, outPlanes = p * expansion;
            foreach (int b in blocks[s] > 1 ? new[] { 0, 1 } : new[] { 0 })   // block 0 (may downsample) and one typical block
            {
                int stride = b == 0 && s > 0 ? 2 : 1, ho = (h - 1) / stride + 1, cin = b == 0 ? inPlanes : outPlanes;
                string n = $"layer{s + 1}.{b}";
                if (bottleneck)
                {
                    yield return new($"{n}.conv1", cin, h, p, 1, 1, 0);
                    yield return new($"{n}.conv2", p, h, p, 3, stride, 1);
                    yield return new($"{n}.conv3", p, ho, outPlanes, 1, 1, 0);
                }
                else
                {
                    yield return new($"{n}.conv1", cin, h, p, 3, stride, 1);
                    yield return new($"{n}.conv2", p, ho, p, 3, 1, 1);
                }
                if (b == 0 && (stride != 1 || cin != outPlanes)) yield return new($"{n}.downsample", cin, h, outPlanes, 1, stride, 0);
                h = ho;
            }
            inPlanes = outPlanes;
        }
    }

    /// <inheritdoc />
    public void Run(BenchOptions options, JsonLines output)
    {
        int depth = options.Int("depth", 50), batch = options.Int("batch", 16), res = options.Int("res", 448), runs = options.Int("runs", 5);
        var dtype = DTypeInfo.TryParse(options.Str("dtype", "bf16")) is DType d and (DType.BFloat16 or DType.Float32) ? d
            : throw new ArgumentException("conv-layers: --dtype must be bf16 or f32");
        var device = Device.Parse(options.Str("device", "cuda"));
        if (device.Type != DeviceType.Cuda) throw new ArgumentException("conv-layers compares cuDNN's NCHW and NHWC convolutions: --device cuda");
        var cuda = (CudaBackend)BackendRegistry.Get(device);
        var nchw = cuda.With(new CudaBackendOptions { ChannelsLast = false });
        var nhwc = cuda.With(new CudaBackendOptions { ChannelsLast = true });
        double totalNchw = 0, totalNhwc = 0;
        foreach (var l in Layers(depth, res))
        {
            var g = Conv2dGeometry.Square(l.Stride, l.Pad);
            int ho = g.OutH(l.H, l.K);
            int[] xs = [batch, l.C, l.H, l.H], ws = [l.O, l.C, l.K, l.K], ys = [batch, l.O, ho, ho];
            using var x = Tensor.RandN(xs, new Rng(1), device: device).To(dtype);
            using var w = Tensor.RandN(ws, new Rng(2), device: device).To(dtype);
            using var dy = Tensor.RandN(ys, new Rng(3), device: device).To(dtype);
            double Time(CudaBackend be, StorageView xv, StorageView dyv) => Median(() =>
            {
                Tensor.FromStorage(be.Conv2dForward(xv, w.StorageView, g), ys).Dispose();
                Tensor.FromStorage(be.Conv2dBackwardData(dyv, w.StorageView, g, xs), xs).Dispose();
                Tensor.FromStorage(be.Conv2dBackwardWeight(xv, dyv, g, ws), ws).Dispose();
                be.Synchronize();
            }, runs);
            double a = Time(nchw, x.StorageView, dy.StorageView);
            using var xn = Tensor.FromStorage(nhwc.ToChannelsLast(x.StorageView), xs);
            using var dyn = Tensor.FromStorage(nhwc.ToChannelsLast(dy.StorageView), ys);
            double b = Time(nhwc, xn.StorageView, dyn.StorageView);
            totalNchw += a; totalNhwc += b;
            output.Write(new Dictionary<string, object?>
            {
                ["workload"] = "conv-layers", ["depth"] = depth, ["layer"] = l.Name, ["n"] = batch, ["c"] = l.C, ["h"] = l.H, ["k"] = l.O,
                ["kernel"] = l.K, ["stride"] = l.Stride, ["dtype"] = dtype.Name(), ["device"] = device.ToString(),
                ["nchw_ms"] = Timing.R(a), ["nhwc_ms"] = Timing.R(b), ["nhwc_speedup"] = Timing.R(a / b),
            });
        }
        output.Write(new Dictionary<string, object?>
        {
            ["workload"] = "conv-layers", ["depth"] = depth, ["layer"] = "total (one block per stage)", ["n"] = batch, ["h"] = res,
            ["dtype"] = dtype.Name(), ["device"] = device.ToString(),
            ["nchw_ms"] = Timing.R(totalNchw), ["nhwc_ms"] = Timing.R(totalNhwc), ["nhwc_speedup"] = Timing.R(totalNchw / totalNhwc),
        });
    }

    static double Median(Action body, int runs)
    {
        body(); body();   // warm-up: cuDNN's algorithm search for the shape happens here
        var t = new double[Math.Max(runs, 3)];
        for (int i = 0; i < t.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            body();
            t[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(t);
        return t[t.Length / 2];
    }
}
