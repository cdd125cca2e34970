using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Bench.Workloads;

/// <summary>
/// The machine's measured float32 FMA peak, the yardstick for "% of peak": every thread runs independent chains of
/// fused multiply-adds on registers only (no memory traffic), 512-bit where AVX-512 exists, else 256-bit FMA3.
/// Reported for one thread and for all of them (--threads), median of --runs timed runs of about 50 ms each (threads started inside the timing: well under 1 %).
/// </summary>
public sealed class PeakBench : IWorkload
{
    /// <inheritdoc />
    public string Name => "peak";

    /// <inheritdoc />
    public string Description => "measured float32 FMA peak (register-only FMA chains), one thread and --threads t (default all), and the GEMM micro-kernel alone in L1 [--runs r]";

    // Turns of the chain loop per timed run: 24 FMAs per turn.
    private const long Turns = 12_000_000;

    /// <inheritdoc />
    public void Run(BenchOptions options, JsonLines output)
    {
        int threads = options.Int("threads", Environment.ProcessorCount), runs = options.Int("runs", 7);
        if (threads < 1) throw new ArgumentException("--threads must be at least 1");
        string isa = Avx512F.IsSupported ? "avx512" : Fma.IsSupported ? "fma3-avx2" : "none";
        if (isa == "none") throw new PlatformNotSupportedException("peak: no FMA instructions on this CPU");
        int lanes = Avx512F.IsSupported ? 16 : 8;
        foreach (int t in threads == 1 ? new[] { 1 } : new[] { 1, threads })
        {
            double flopsPerRun = 2.0 * lanes * 24 * Turns * t;
            Chains(Turns / 10); // warm-up (and JIT)
            var ms = new double[runs];
            for (int r = 0; r < runs; r++)
            {
                var sw = Stopwatch.StartNew();
                var workers = Enumerable.Range(0, t).Select(_ => new Thread(() => Sink(Chains(Turns)))).ToArray();
                foreach (var w in workers) w.Start();
                foreach (var w in workers) w.Join();
                ms[r] = sw.Elapsed.TotalMilliseconds;
            }
            Array.Sort(ms);
            double median = ms[runs / 2], best = ms[0];
            output.Write(new Dictionary<string, object?>
            {
                ["workload"] = "peak", ["isa"] = isa, ["threads"] = t,
                ["ms"] = Timing.R(median, 3), ["gflops"] = Timing.R(flopsPerRun / median / 1e6, 1),
                ["best_gflops"] = Timing.R(flopsPerRun / best / 1e6, 1),
            });
        }
        if (Avx512F.IsSupported)
        {
            // The GEMM's micro-kernel with everything in L1: what the blocked GEMM and the convs lose is outside it.
            var g = Enumerable.Range(0, runs).Select(_ => KernelGflops(256, 100_000)).Order().ToArray();
            output.Write(new Dictionary<string, object?>
            {
                ["workload"] = "peak", ["kernel"] = "gemm avx512 8x32, kc 256, operands in L1", ["threads"] = 1,
                ["gflops"] = Timing.R(g[runs / 2], 1), ["best_gflops"] = Timing.R(g[^1], 1),
            });
        }
    }

    // The GEMM micro-kernel alone, its A and B slivers and C tile in L1: the ceiling the blocked GEMM can reach.
    private static unsafe double KernelGflops(int kc, int calls)
    {
        int mr = GemmMicroKernel.MR, nr = GemmMicroKernel.NR;
        var a = GC.AllocateArray<float>(mr * kc, pinned: true); var b = GC.AllocateArray<float>(nr * kc, pinned: true);
        var c = GC.AllocateArray<float>(mr * nr, pinned: true);
        for (int i = 0; i < a.Length; i++) a[i] = 1e-3f * (i % 7);
        for (int i = 0; i < b.Length; i++) b[i] = 1e-3f * (i % 5);
        fixed (float* pa = a, pb = b, pc = c)
        {
            for (int i = 0; i < calls / 10; i++) GemmMicroKernel.Run(kc, pa, pb, pc);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < calls; i++) GemmMicroKernel.Run(kc, pa, pb, pc);
            return 2.0 * mr * nr * kc * calls / sw.Elapsed.TotalSeconds / 1e9;
        }
    }

    private static volatile float _sink;
    private static void Sink(float x) => _sink = x;

    // 24 independent accumulators: more than FMA latency × FMA ports on current cores, so the ports never wait.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains(long turns)
    {
        if (Avx512F.IsSupported)
        {
            var m = Vector512.Create(0.999999f); var a = Vector512.Create(1e-7f);
            Vector512<float> c0 = Vector512.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
            Vector512<float> d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0, d6 = c0, d7 = c0, d8 = c0, d9 = c0, d10 = c0, d11 = c0;
            for (long i = 0; i < turns; i++)
            {
                c0 = Avx512F.FusedMultiplyAdd(c0, m, a); c1 = Avx512F.FusedMultiplyAdd(c1, m, a); c2 = Avx512F.FusedMultiplyAdd(c2, m, a);
                c3 = Avx512F.FusedMultiplyAdd(c3, m, a); c4 = Avx512F.FusedMultiplyAdd(c4, m, a); c5 = Avx512F.FusedMultiplyAdd(c5, m, a);
                c6 = Avx512F.FusedMultiplyAdd(c6, m, a); c7 = Avx512F.FusedMultiplyAdd(c7, m, a); c8 = Avx512F.FusedMultiplyAdd(c8, m, a);
                c9 = Avx512F.FusedMultiplyAdd(c9, m, a); c10 = Avx512F.FusedMultiplyAdd(c10, m, a); c11 = Avx512F.FusedMultiplyAdd(c11, m, a);
                d0 = Avx512F.FusedMultiplyAdd(d0, m, a); d1 = Avx512F.FusedMultiplyAdd(d1, m, a); d2 = Avx512F.FusedMultiplyAdd(d2, m, a);
                d3 = Avx512F.FusedMultiplyAdd(d3, m, a); d4 = Avx512F.FusedMultiplyAdd(d4, m, a); d5 = Avx512F.FusedMultiplyAdd(d5, m, a);
                d6 = Avx512F.FusedMultiplyAdd(d6, m, a); d7 = Avx512F.FusedMultiplyAdd(d7, m, a); d8 = Avx512F.FusedMultiplyAdd(d8, m, a);
                d9 = Avx512F.FusedMultiplyAdd(d9, m, a); d10 = Avx512F.FusedMultiplyAdd(d10, m, a); d11 = Avx512F.FusedMultiplyAdd(d11, m, a);
            }
            var s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8 + d9 + d10 + d11;
            return Vector512.Sum(s);
        }
        else
        {
            var m = Vector256.Create(0.999999f); var a = Vector256.Create(1e-7f);
            Vector256<float> c0 = Vector256.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
            Vector256<float> d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0, d6 = c0, d7 = c0, d8 = c0, d9 = c0, d10 = c0, d11 = c0;
            for (long i = 0; i < turns; i++)
            {
                c0 = Fma.MultiplyAdd(c0, m, a); c1 = Fma.MultiplyAdd(c1, m, a); c2 = Fma.MultiplyAdd(c2, m, a);
                c3 = Fma.MultiplyAdd(c3, m, a); c4 = Fma.MultiplyAdd(c4, m, a); c5 = Fma.MultiplyAdd(c5, m, a);
                c6 = Fma.MultiplyAdd(c6, m, a); c7 = Fma.MultiplyAdd(c7, m, a); c8 = Fma.MultiplyAdd(c8, m, a);
                c9 = Fma.MultiplyAdd(c9, m, a); c10 = Fma.MultiplyAdd(c10, m, a); c11 = Fma.MultiplyAdd(c11, m, a);
                d0 = Fma.MultiplyAdd(d0, m, a); d1 = Fma.MultiplyAdd(d1, m, a); d2 = Fma.MultiplyAdd(d2, m, a);
                d3 = Fma.MultiplyAdd(d3, m, a); d4 = Fma.MultiplyAdd(d4, m, a); d5 = Fma.MultiplyAdd(d5, m, a);
                d6 = Fma.MultiplyAdd(d6, m, a); d7 = Fma.MultiplyAdd(d7, m, a); d8 = Fma.MultiplyAdd(d8, m, a);
                d9 = Fma.MultiplyAdd(d9, m, a); d10 = Fma.MultiplyAdd(d10, m, a); d11 = Fma.MultiplyAdd(d11, m, a);
            }
            var s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8 + d9 + d10 + d11;
            return Vector256.Sum(s);
        }
    }
}
