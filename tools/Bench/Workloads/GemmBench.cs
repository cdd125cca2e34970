using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Bench.Workloads;

/// <summary>
/// float32 CpuGemm: square sizes (--sizes 256,512), a custom shape (--m --n --k), transposes
/// (--trans none|a|b|ab), threads (--threads), a forced kernel (--path avx512|avx2|scalar) and,
/// by default, the skinny shapes a 3×3 conv layer (64→64 at 56×56) and its backward produce.
/// <c>--device cuda</c> times Ops.MatMul on the GPU (cuBLAS SGEMM; transposes are strided views read in place;
/// <c>--tf32</c> allows TF32 tensor cores), each run synchronised.
/// </summary>
public sealed class GemmBench : IWorkload
{
    /// <inheritdoc />
    public string Name => "gemm";

    /// <inheritdoc />
    public string Description => "float32 GEMM GFLOPS: --sizes 256,512 | --m --n --k [--trans none|a|b|ab] [--threads t] [--path avx512|avx2|scalar] [--runs r] [--device cpu|cuda] [--tf32] [--ab team]";

    /// <inheritdoc />
    public void Run(BenchOptions options, JsonLines output)
    {
        var cpu = BenchCpu.Options(options);
        int threads = cpu.Threads;
        int runs = options.Int("runs", 7);
        string path = options.Str("path", "auto");
        string trans = options.Str("trans", "none");
        if (trans is not ("none" or "a" or "b" or "ab")) throw new ArgumentException($"--trans expects none|a|b|ab, got '{trans}'");
        int m = options.Int("m", 0), n = options.Int("n", 0), k = options.Int("k", 0);
        bool custom = m > 0 || n > 0 || k > 0;
        bool sizesGiven = options.Str("sizes", "") != "";
        int[] sizes = options.Ints("sizes", new[] { 256, 512, 1024, 2048 });

        var shapes = new List<(int m, int n, int k, string trans, string label)>();
        if (custom)
        {
            if (m <= 0 || n <= 0 || k <= 0) throw new ArgumentException("--m, --n and --k must all be given and positive");
            shapes.Add((m, n, k, trans, "custom"));
        }
        else
        {
            foreach (var s in sizes) shapes.Add((s, s, s, trans, "square"));
            if (!sizesGiven)
            {
                // conv 3×3, 64→64 channels at 56×56 (one image): forward W·cols, backward-data Wᵀ·dY, backward-weight dY·colsᵀ.
                shapes.Add((64, 3136, 576, "none", "conv-fwd"));
                shapes.Add((576, 3136, 64, "a", "conv-bwd-data"));
                shapes.Add((64, 576, 3136, "b", "conv-bwd-weight"));
                shapes.Add((8, 1000, 300, "none", "skinny-m"));
                shapes.Add((1000, 8, 300, "none", "skinny-n"));
            }
        }

        var device = Device.Parse(options.Str("device", "cpu"));
        if (device.Type == DeviceType.Cuda)
        {
            bool tf32 = options.Flag("tf32");
            using (BackendRegistry.Use(((CudaBackend)BackendRegistry.Get(device)).With(new CudaBackendOptions { AllowTf32 = tf32 })))
                foreach (var (sm, sn, sk, st, label) in shapes) MeasureDevice(output, device, sm, sn, sk, st, label, runs, tf32);
            return;
        }

        cpu = cpu with
        {
            GemmKernel = path switch
            {
                "auto" => null,
                "avx512" => GemmPath.Avx512,
                "avx2" => GemmPath.Avx2,
                "scalar" => GemmPath.Scalar,
                _ => throw new ArgumentException($"--path expects auto|avx512|avx2|scalar, got '{path}'"),
            },
        };
        string? ab = options.Flag("ab") ? options.Str("ab", "team") : null;
        foreach (var (sm, sn, sk, st, label) in shapes)
            if (ab is null) Measure(output, cpu, sm, sn, sk, st, label, runs);
            else MeasureAb(output, cpu, ab, sm, sn, sk, st, label, runs);
    }

    // Random operands for op(A) [m, k] · op(B) [k, n] as stored (transposed ones k×m / n×k), and the repetitions per timed
    // run that keep small shapes clear of the timer's resolution.
    private static (float[] A, float[] B, float[] C, int Lda, int Ldb, int Reps) Operands(int m, int n, int k, bool ta, bool tb)
    {
        var rng = new Random(1);
        var a = new float[(long)m * k]; var b = new float[(long)k * n]; var c = new float[(long)m * n];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() - 0.5);
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() - 0.5);
        return (a, b, c, ta ? m : k, tb ? k : n, (int)Math.Clamp(2e8 / (2.0 * m * n * k), 1, 1000));
    }

    private static void Measure(JsonLines output, CpuBackendOptions cpu, int m, int n, int k, string trans, string label, int runs)
    {
        bool ta = trans.Contains('a'), tb = trans.Contains('b');
        var (a, b, c, lda, ldb, reps) = Operands(m, n, k, ta, tb);
        double flops = 2.0 * m * n * k;
        // The fastest run is recorded too: on a shared machine it shows what the code does when not preempted.
        var each = new List<double>();
        double ms = Timing.MedianMs(() =>
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            for (int r = 0; r < reps; r++) CpuGemm.Gemm<float>(cpu, ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, n);
            each.Add(sw.Elapsed.TotalMilliseconds / reps);
        }, warmup: 2, runs: runs) / reps;
        double minMs = each.Skip(2).Min();
        output.Write(new Dictionary<string, object?>
        {
            ["workload"] = "gemm",
            ["shape"] = label,
            ["n"] = label == "square" ? n : null,
            ["m"] = m, ["ncols"] = n, ["k"] = k,
            ["trans"] = trans,
            ["device"] = "cpu",
            ["path"] = CpuGemm.PathFor(cpu).ToString().ToLowerInvariant(),
            ["threads"] = cpu.Threads,
            ["ms"] = Timing.R(ms, 4),
            ["gflops"] = Timing.R(flops / ms / 1e6, 1),
            ["min_ms"] = Timing.R(minMs, 4),
            ["best_gflops"] = Timing.R(flops / minMs / 1e6, 1),
        });
    }

    // Alternating runs with the knob off and on (AbKnobs), same operands.
    private static void MeasureAb(JsonLines output, CpuBackendOptions cpu, string knob, int m, int n, int k, string trans, string label, int runs)
    {
        bool ta = trans.Contains('a'), tb = trans.Contains('b');
        var (a, b, c, lda, ldb, reps) = Operands(m, n, k, ta, tb);
        double flops = 2.0 * m * n * k;
        var (off, on) = AbKnobs.MedianMs(knob, cpu, o => { for (int r = 0; r < reps; r++) CpuGemm.Gemm<float>(o, ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, n); }, runs);
        off /= reps; on /= reps;
        output.Write(new Dictionary<string, object?>
        {
            ["workload"] = "gemm-ab", ["knob"] = knob, ["shape"] = label, ["m"] = m, ["ncols"] = n, ["k"] = k, ["trans"] = trans,
            ["threads"] = cpu.Threads, ["ms_off"] = Timing.R(off, 4), ["ms_on"] = Timing.R(on, 4),
            ["gflops_off"] = Timing.R(flops / off / 1e6, 1), ["gflops_on"] = Timing.R(flops / on / 1e6, 1), ["speedup"] = Timing.R(off / on, 3),
        });
    }

    private static void MeasureDevice(JsonLines output, Device device, int m, int n, int k, string trans, string label, int runs, bool tf32)
    {
        bool ta = trans.Contains('a'), tb = trans.Contains('b');
        // Stored matrices; a transposed operand is the .T view of its stored [k, m] / [n, k] matrix.
        using var sa = Tensor.Rand(ta ? [k, m] : [m, k], new Rng(1), -0.5, 0.5, device: device);
        using var sb = Tensor.Rand(tb ? [n, k] : [k, n], new Rng(2), -0.5, 0.5, device: device);
        using var a = ta ? sa.T : sa.Detach();
        using var b = tb ? sb.T : sb.Detach();
        double flops = 2.0 * m * n * k;
        int reps = (int)Math.Clamp(2e10 / flops, 1, 1000);
        var each = new List<double>();
        double ms = Timing.MedianMs(() =>
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            for (int r = 0; r < reps; r++) Ops.MatMul(a, b).Dispose();
            CudaProfiler.Synchronize(device);
            each.Add(sw.Elapsed.TotalMilliseconds / reps);
        }, warmup: 2, runs: runs) / reps;
        double minMs = each.Skip(2).Min();
        output.Write(new Dictionary<string, object?>
        {
            ["workload"] = "gemm", ["shape"] = label, ["n"] = label == "square" ? n : null,
            ["m"] = m, ["ncols"] = n, ["k"] = k, ["trans"] = trans,
            ["device"] = device.ToString(), ["path"] = tf32 ? "cublas-tf32" : "cublas-fp32",
            ["ms"] = Timing.R(ms, 4), ["gflops"] = Timing.R(flops / ms / 1e6, 1),
            ["min_ms"] = Timing.R(minMs, 4), ["best_gflops"] = Timing.R(flops / minMs / 1e6, 1),
        });
    }
}
