namespace MtlMoe.Engine;

/// <summary>
/// Every <c>MTLMOE_*</c> environment variable the engine reads, in one place. They are read once, when this class is
/// first used (in practice when the first tensor op builds the default CPU backend), into the defaults of the
/// options they feed; changing the environment later has no effect on a running process. Code and tests that want other
/// settings build their own backend (<c>new CpuBackend(options)</c>) instead.
/// <list type="table">
/// <item><term>MTLMOE_IMPLICIT=0</term><description>the default CPU backend leaves out the implicit-GEMM conv algorithms, the
/// 1×1 stride-2 GEMM and the blocked backward-weights (<see cref="Backends.Cpu.CpuBackendOptions.FromEnvironment"/>): the
/// convs run as unfold + GEMM (and tiled bands), which sums in the order of the builds before those algorithms.</description></item>
/// <item><term>MTLMOE_TEAM=0</term><description>parallel regions use Parallel.For instead of the spinning worker team.</description></item>
/// <item><term>MTLMOE_SPIN_US=n</term><description>how long an idle worker spins before it blocks, in µs (default 2000).</description></item>
/// <item><term>MTLMOE_CPU_DISABLE=a,b</term><description>comma-separated path names the default CPU backend must not take
/// (<see cref="Backends.Cpu.CpuBackendOptions.Paths"/>), e.g. <c>implicit-gemm-stride2-backward-data</c>.</description></item>
/// <item><term>MTLMOE_PROFILE=1</term><description>per-op wall-time profile printed on stderr at exit (<see cref="Autograd.OpProfile"/>).</description></item>
/// <item><term>MTLMOE_CUDA_LIB_DIR=dir</term><description>folder searched first for the CUDA libraries
/// (<see cref="Backends.Cuda.Native.CudaLibraryResolver"/>, which reads it when it loads a library).</description></item>
/// </list>
/// </summary>
public static class EnvironmentVariables
{
    /// <summary>Name of the variable that turns the implicit-GEMM family off ("0").</summary>
    public const string Implicit = "MTLMOE_IMPLICIT";
    /// <summary>Name of the variable that turns the worker team off ("0").</summary>
    public const string Team = "MTLMOE_TEAM";
    /// <summary>Name of the variable with the worker spin time in µs.</summary>
    public const string SpinUs = "MTLMOE_SPIN_US";
    /// <summary>Name of the variable listing CPU paths to leave out.</summary>
    public const string CpuDisableList = "MTLMOE_CPU_DISABLE";
    /// <summary>Name of the variable that turns the op profile on ("1").</summary>
    public const string Profile = "MTLMOE_PROFILE";
    /// <summary>Name of the variable with a folder searched first for the CUDA libraries.</summary>
    public const string CudaLibDir = "MTLMOE_CUDA_LIB_DIR";

    /// <summary>MTLMOE_IMPLICIT is "0".</summary>
    internal static readonly bool ImplicitOff = Environment.GetEnvironmentVariable(Implicit) == "0";
    /// <summary>MTLMOE_TEAM is "0".</summary>
    internal static readonly bool TeamOff = Environment.GetEnvironmentVariable(Team) == "0";
    /// <summary>MTLMOE_SPIN_US as a non-negative integer, or null when unset or malformed.</summary>
    internal static readonly int? SpinMicroseconds =
        int.TryParse(Environment.GetEnvironmentVariable(SpinUs), out int us) && us >= 0 ? us : null;
    /// <summary>The names in MTLMOE_CPU_DISABLE (empty when unset).</summary>
    internal static readonly string[] CpuDisable = (Environment.GetEnvironmentVariable(CpuDisableList) ?? "")
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    /// <summary>MTLMOE_PROFILE is "1".</summary>
    internal static readonly bool ProfileOn = Environment.GetEnvironmentVariable(Profile) == "1";
}
