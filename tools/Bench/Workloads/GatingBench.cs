using System.Diagnostics;
using MtlMoe.Engine;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cuda;
using MtlMoe.Engine.MoE;

namespace MtlMoe.Bench.Workloads;

/// <summary>
/// Noisy top-k gating, float32, forward and backward, two scopes: "op" (logits → gates, importance, load
/// and aux loss; independent of d) and "layer" (x → the same, including the x·W_g and x·W_noise
/// projections). Each runs as "fused" (one op: gating, importance, load and aux with one backward,
/// <see cref="MoeOps.NoisyTopKGatingWithAux"/>; on CUDA one kernel each way), "primitive" (the gating primitive, then the
/// aux loss from generic ops on its [E] rows) and as "composed" from generic engine ops
/// (Max/Eq/Where peel off the top k+1, masked Exp for the softmax, NormCdf for the load; ties are not
/// broken by index there, which random inputs never hit). backward = median(forward + backward) − median(forward).
/// With <c>--device cuda</c> every run ends with a device synchronisation, lines carry the fraction of the device's
/// peak DRAM bandwidth, each phase is an NVTX range ("gating/op/fused/forward B=… E=… k=…"), and <c>--profile</c>
/// brackets each timed region (after warm-up) with cuProfilerStart/Stop for nsys/ncu.
/// </summary>
public sealed class GatingBench : IWorkload
{
    /// <inheritdoc />
    public string Name => "gating";

    /// <inheritdoc />
    public string Description => "MoE noisy top-k gating fused vs composed, fwd/bwd: --batch 256,4096,65536 --dim 512,2048 --experts 4,8,16,64 --k 1,2 [--scope op,layer] [--path fused,primitive,composed] [--runs r] [--threads t] [--full: layer scope beyond B·d = 4096·2048 too] [--device cpu|cuda] [--profile]";

    /// <inheritdoc />
    public void Run(BenchOptions options, JsonLines output)
    {
        var batches = options.Ints("batch", [256, 4096, 65536]);
        var dims = options.Ints("dim", [512, 2048]);
        var experts = options.Ints("experts", [4, 8, 16, 64]);
        var ks = options.Ints("k", [1, 2]);
        var scopes = options.Str("scope", "op,layer").Split(',');
        var paths = options.Str("path", "fused,composed").Split(',');
        var cpu = BenchCpu.Options(options);
        int runsOpt = options.Int("runs", 0), threads = cpu.Threads;
        bool full = options.Flag("full");
        _device = Device.Parse(options.Str("device", "cpu"));
        _profile = options.Flag("profile");
        _peakGBps = CudaProfiler.PeakBandwidthGBps(_device) is double peak && peak > 0 ? peak : null;
        if (_peakGBps is double pk) Console.Error.WriteLine($"gating: {_device}, peak DRAM bandwidth {pk:F0} GB/s, NVTX {(Nvtx.Enabled ? "on" : "off (libnvToolsExt.so.1 not found)")}");
        foreach (var s in scopes) if (s is not ("op" or "layer")) throw new ArgumentException($"gating: unknown --scope '{s}' (op, layer)");
        foreach (var p in paths) if (p is not ("fused" or "primitive" or "composed")) throw new ArgumentException($"gating: unknown --path '{p}' (fused, primitive, composed)");
        using (BenchCpu.Use(cpu))
        {
            foreach (int b in batches)
                foreach (int e in experts)
                    foreach (int k in ks)
                    {
                        if (k > e) continue;
                        if (scopes.Contains("op")) RunOp(output, paths, b, e, k, runsOpt, threads);
                        if (scopes.Contains("layer"))
                            foreach (int d in dims)
                            {
                                // The projections of a 65536-row batch take seconds per run on the CPU; keep the default grid short.
                                if ((long)b * d > 4096L * 2048 && !full) { Console.Error.WriteLine($"gating layer B={b} d={d}: skipped (add --full)"); continue; }
                                RunLayer(output, paths, b, d, e, k, runsOpt, threads);
                            }
                    }
        }
    }

    private static Device _device = Device.Cpu;
    private static bool _profile;
    private static double? _peakGBps;

    // Fewer repetitions for the big shapes so that the default grid stays within a few minutes.
    private static int Runs(int opt, double work) => opt > 0 ? opt : work > 5e8 ? 1 : work > 5e7 ? 3 : 7;

    private static double Median(string phase, Action body, int runs)
    {
        using var range = Nvtx.Range(phase);
        if (runs > 1) { body(); CudaProfiler.Synchronize(_device); }   // warm-up
        if (_profile) CudaProfiler.Start(_device);
        var t = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            body();
            CudaProfiler.Synchronize(_device);   // device work is asynchronous: time it to completion
            t[i] = sw.Elapsed.TotalMilliseconds;
        }
        if (_profile) CudaProfiler.Stop(_device);
        Array.Sort(t);
        return runs % 2 == 1 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    }

    private static void RunOp(JsonLines output, string[] paths, int b, int e, int k, int runsOpt, int threads)
    {
        using var clean = Tensor.RandN([b, e], new Rng(1), device: _device);
        using var raw = Tensor.RandN([b, e], new Rng(2), device: _device);
        using var eps = Tensor.RandN([b, e], new Rng(3), device: _device);
        int runs = Runs(runsOpt, 40.0 * b * e);
        // Essential traffic: read clean, raw, ε; write gates (+2 rows) and indices. Backward: those three again,
        // the upstream gradient, and the two gradients written.
        double fwdBytes = 4.0 * (3L * b * e + (b + 2L) * e + (long)b * k), bwdBytes = 4.0 * (3L * b * e + (b + 2L) * e + 2L * b * e);
        foreach (var path in paths)
        {
            Console.Error.WriteLine($"gating op {path}: B={b} E={e} k={k}");
            Tensor Forward(Tensor c, Tensor r) => Path(path, c, r, eps, k);
            string tag = $"B={b} E={e} k={k}";
            double fwd = Median($"gating/op/{path}/forward {tag}", () => { using var _ = Autograd(false, () => Forward(clean, raw)); }, runs);
            double both = Median($"gating/op/{path}/forward+backward {tag}", () => Backward(clean, raw, Forward), runs);
            Write(output, "op", path, b, null, e, k, runs, threads, fwd, Math.Max(both - fwd, 0), fwdBytes, bwdBytes);
        }
    }

    private static void RunLayer(JsonLines output, string[] paths, int b, int d, int e, int k, int runsOpt, int threads)
    {
        using var x = Tensor.Rand([b, d], new Rng(4), -1, 1, device: _device);
        using var wg = Tensor.Rand([d, e], new Rng(5), -0.05, 0.05, device: _device);
        using var wn = Tensor.Rand([d, e], new Rng(6), -0.05, 0.05, device: _device);
        int runs = Runs(runsOpt, 4.0 * b * d * e);
        double fwdBytes = 4.0 * ((long)b * d + 2L * d * e + (long)b * e + (long)b * k);
        double bwdBytes = 4.0 * (2L * b * d + 4L * d * e + 2L * b * e);
        foreach (var path in paths)
        {
            Console.Error.WriteLine($"gating layer {path}: B={b} d={d} E={e} k={k}");
            var noise = new Rng(7);
            Tensor Forward(Tensor g, Tensor n)
            {
                using var c = Ops.MatMul(x, g);
                using var r = Ops.MatMul(x, n);
                using var eps = Tensor.RandN([b, e], noise, device: _device);
                return Path(path, c, r, eps, k);
            }
            string tag = $"B={b} d={d} E={e} k={k}";
            double fwd = Median($"gating/layer/{path}/forward {tag}", () => { using var _ = Autograd(false, () => Forward(wg, wn)); }, runs);
            double both = Median($"gating/layer/{path}/forward+backward {tag}", () => Backward(wg, wn, Forward), runs);
            Write(output, "layer", path, b, d, e, k, runs, threads, fwd, Math.Max(both - fwd, 0), fwdBytes, bwdBytes);
        }
    }

    private static Tensor Autograd(bool on, Func<Tensor> f)
    {
        if (on) return f();
        using var _ = MtlMoe.Engine.Autograd.GradMode.NoGrad();
        return f();
    }

    // Forward with the two inputs as gradient leaves, then backward of Σ gates·0.5 + aux.
    private static void Backward(Tensor a, Tensor b, Func<Tensor, Tensor, Tensor> forward)
    {
        using var scope = DisposeScope.Begin();
        var la = a.Detach().RequireGrad(); var lb = b.Detach().RequireGrad();
        var y = forward(la, lb);
        y.Backward();
        la.ZeroGrad(); lb.ZeroGrad();
    }

    private static Tensor Path(string path, Tensor clean, Tensor raw, Tensor eps, int k) => path switch
    {
        "fused" => FusedAux(clean, raw, eps, k),
        "primitive" => PrimitiveAux(clean, raw, eps, k),
        _ => ComposedAux(clean, raw, eps, k),
    };

    // Scalar: Σ gates · w (a fixed non-uniform weighting so that the gates' gradient is not zero) + aux, the aux loss inside
    // the one fused op.
    private static Tensor FusedAux(Tensor clean, Tensor raw, Tensor eps, int k)
    {
        using var g = MoeOps.NoisyTopKGatingWithAux(clean, raw, eps, k, 1e-2, 0.01, 0.01);
        using var aux = g.Aux!;
        return Finish(g.Gates, aux);
    }

    // The gating primitive, then the aux loss from generic ops on importance and load (the layer before the fused op).
    private static Tensor PrimitiveAux(Tensor clean, Tensor raw, Tensor eps, int k)
    {
        using var g = MoeOps.NoisyTopKGating(clean, raw, eps, k);
        using var aux = MoeOps.AuxLoss(g, 0.01, 0.01);
        return Finish(g.Gates, aux);
    }

    private static Tensor Finish(Tensor gates, Tensor aux)
    {
        using var w = Ops.MulScalar(gates, 0.5);
        using var w2 = Ops.Mul(w, gates);
        using var s = Ops.Sum(w2);
        return Ops.Add(s, aux);
    }

    // The same gating from generic ops: peel the top k+1 with Max, mask, softmax over the top k, Φ for the load.
    private static Tensor ComposedAux(Tensor clean, Tensor raw, Tensor eps, int k)
    {
        using var sp = Ops.Softplus(raw);
        using var sigma = Ops.AddScalar(sp, 1e-2);
        using var es = Ops.Mul(eps, sigma);
        using var noisy = Ops.Add(clean, es);
        using var ninf = Tensor.Full([], -1e30, noisy.DType, noisy.Device);
        int e = clean.Shape[1];
        int m = Math.Min(k + 1, e);
        var tops = new List<Tensor>();   // each [B, 1]
        var rest = noisy.Detach();
        try
        {
            for (int i = 0; i < m; i++)
            {
                var v = Ops.Max(rest, [1], keepDim: true);
                tops.Add(v);
                using var hit = Ops.Eq(rest, v);
                var next = Ops.Where(hit, ninf, rest);
                rest.Dispose();
                rest = next;
            }
            using var inTop = Ops.Ge(noisy, tops[k - 1]);   // [B, E] mask of the top k
            using var sh = Ops.Sub(noisy, tops[0]);
            using var ex = Ops.Exp(sh);
            using var num = Ops.Mul(ex, inTop);
            using var den = Ops.Sum(num, [1], keepDim: true);
            using var gates = Ops.Div(num, den);
            using var importance = Ops.Sum(gates, [0]);
            Tensor load;
            if (k < e)
            {
                using var thr = Ops.Where(inTop, tops[k], tops[k - 1]);
                using var diff = Ops.Sub(clean, thr);
                using var z = Ops.Div(diff, sigma);
                using var p = Ops.NormCdf(z);
                load = Ops.Sum(p, [0]);
            }
            else load = Ops.Sum(inTop, [0]);
            using var _l = load;
            using var ci = MoeOps.CvSquared(importance);
            using var cl = MoeOps.CvSquared(load);
            using var a = Ops.MulScalar(ci, 0.01);
            using var l = Ops.MulScalar(cl, 0.01);
            using var aux = Ops.Add(a, l);
            return Finish(gates, aux);
        }
        finally { rest.Dispose(); foreach (var t in tops) t.Dispose(); }
    }

    private static void Write(JsonLines output, string scope, string path, int b, int? d, int e, int k, int runs, int threads,
        double fwd, double bwd, double fwdBytes, double bwdBytes)
    {
        output.Write(new Dictionary<string, object?>
        {
            ["workload"] = "gating", ["scope"] = scope, ["path"] = path, ["batch"] = b, ["dim"] = d, ["experts"] = e, ["k"] = k,
            ["dtype"] = "float32", ["device"] = _device.ToString(), ["threads"] = threads, ["runs"] = runs,
            ["forward_ms"] = Timing.R(fwd), ["backward_ms"] = Timing.R(bwd),
            ["forward_gbps"] = Timing.R(fwdBytes / (fwd * 1e6)), ["backward_gbps"] = bwd > 0 ? Timing.R(bwdBytes / (bwd * 1e6)) : null,
            ["peak_gbps"] = _peakGBps is double pk ? Timing.R(pk, 1) : null,
            ["forward_bw_fraction"] = _peakGBps is double p1 ? Timing.R(fwdBytes / (fwd * 1e6) / p1, 4) : null,
            ["backward_bw_fraction"] = _peakGBps is double p2 && bwd > 0 ? Timing.R(bwdBytes / (bwd * 1e6) / p2, 4) : null,
        });
    }
}
