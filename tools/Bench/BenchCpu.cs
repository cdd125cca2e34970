using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Bench;

/// <summary>The CPU backend a workload runs on: the environment's options (MTLMOE_*), with <c>--threads</c> applied.</summary>
public static class BenchCpu
{
    /// <summary>The options for this run: <see cref="CpuBackendOptions.FromEnvironment"/> with --threads (default: all cores).</summary>
    public static CpuBackendOptions Options(BenchOptions options)
    {
        var o = CpuBackendOptions.FromEnvironment();
        int threads = options.Int("threads", o.Threads);
        if (threads < 1) throw new ArgumentException($"--threads expects at least 1, got {threads}");
        return o with { Threads = threads };
    }

    /// <summary>Installs a CPU backend with <paramref name="cpu"/> for the rest of the workload (dispose to leave it).</summary>
    public static IDisposable Use(CpuBackendOptions cpu) => BackendRegistry.Use(new CpuBackend(cpu));
}
