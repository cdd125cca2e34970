namespace MtlMoe.Bench;

/// <summary>One benchmark workload; every implementation in this assembly is found by reflection.</summary>
public interface IWorkload
{
    /// <summary>Name typed on the command line (e.g. "gemm").</summary>
    string Name { get; }

    /// <summary>One line for the usage text.</summary>
    string Description { get; }

    /// <summary>Runs the measurements, writing one JSON line per measurement through <paramref name="output"/>.</summary>
    void Run(BenchOptions options, JsonLines output);
}
