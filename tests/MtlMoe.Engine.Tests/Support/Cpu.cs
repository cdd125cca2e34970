using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Tests;

/// <summary>
/// A test's own CPU backend: <see cref="With(CpuBackendOptions, Action)"/> installs a <see cref="CpuBackend"/> with the
/// given options for the calling flow only (<see cref="BackendRegistry.Use"/>), so tests that switch paths or thresholds
/// run in parallel with the rest, each on its own backend.
/// </summary>
internal static class Cpu
{
    /// <summary>The code defaults (not the environment's), the base every test's options start from.</summary>
    public static CpuBackendOptions Defaults => CpuBackendOptions.Defaults;

    /// <summary>Runs <paramref name="body"/> with a CPU backend of <paramref name="options"/> installed for this flow.</summary>
    public static void With(CpuBackendOptions options, Action body)
    {
        using var _ = BackendRegistry.Use(new CpuBackend(options));
        body();
    }

    /// <summary>As <see cref="With(CpuBackendOptions, Action)"/>, returning <paramref name="body"/>'s result.</summary>
    public static T With<T>(CpuBackendOptions options, Func<T> body)
    {
        using var _ = BackendRegistry.Use(new CpuBackend(options));
        return body();
    }

    /// <summary>The options of the CPU backend the current flow uses.</summary>
    public static CpuBackendOptions Current => ((CpuBackend)BackendRegistry.Cpu).Options;
}
