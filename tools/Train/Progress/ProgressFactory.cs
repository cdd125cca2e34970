using MtlMoe.Model.Training;
using Spectre.Console;

namespace MtlMoe.Train.Progress;

/// <summary>Chooses between the live display and plain lines.</summary>
public static class ProgressFactory
{
    /// <summary>
    /// A <see cref="LiveProgress"/> when stdout is an interactive terminal (not redirected, Spectre reports an
    /// interactive console, TERM is not "dumb", CI is not "true") and <paramref name="forcePlain"/> is false;
    /// otherwise <paramref name="plain"/>().
    /// </summary>
    public static ITrainingProgress Create(bool forcePlain, Func<ITrainingProgress> plain)
        => UseLive(forcePlain, Console.IsOutputRedirected, AnsiConsole.Profile.Capabilities.Interactive,
                   Environment.GetEnvironmentVariable("TERM"), Environment.GetEnvironmentVariable("CI"))
            ? new LiveProgress()
            : plain();

    /// <summary>The decision itself, from its inputs (testable without a terminal).</summary>
    internal static bool UseLive(bool forcePlain, bool outputRedirected, bool interactive, string? term, string? ci)
        => !forcePlain && !outputRedirected && interactive
           && !string.Equals(term, "dumb", StringComparison.OrdinalIgnoreCase)
           && !string.Equals(ci?.Trim(), "true", StringComparison.OrdinalIgnoreCase);
}
