using MtlMoe.Engine;
using MtlMoe.Model.Data;
using MtlMoe.Model.IO;
using MtlMoe.Model.Training;

namespace MtlMoe.Train.Cli;

/// <summary>
/// The program's one place that turns an exception into what the user reads: a single line
/// <c>error: &lt;file&gt;[:&lt;line&gt;]: &lt;what&gt;</c> (with a hint where one helps) and an exit code — 2 for a bad
/// command line, 1 for everything else (bad data, bad or unwritable files, a diverged run, an unusable device).
/// A stack trace is printed only with <c>--debug</c> or <c>MTLMOE_DEBUG=1</c>.
/// </summary>
public static class ErrorReport
{
    /// <summary>Exit code of a bad command line.</summary>
    public const int UsageExit = 2;
    /// <summary>Exit code of any other failure.</summary>
    public const int FailureExit = 1;

    /// <summary>The environment variable that turns stack traces on.</summary>
    public const string DebugVariable = "MTLMOE_DEBUG";

    /// <summary>True when <paramref name="args"/> hold --debug or the environment asks for traces.</summary>
    public static bool DebugRequested(IReadOnlyList<string> args)
        => args.Contains("--debug") || Environment.GetEnvironmentVariable(DebugVariable) is "1" or "true" or "on";

    /// <summary>Writes the message for <paramref name="e"/> to <paramref name="error"/>; returns the exit code.</summary>
    public static int Write(Exception e, TextWriter error, bool debug)
    {
        var (code, line) = Describe(e);
        error.WriteLine($"error: {line}");
        if (code == UsageExit) error.WriteLine(CommandLine.ShortUsage);
        if (debug) error.WriteLine(e.ToString());
        return code;
    }

    /// <summary>The exit code and the line (without "error: ") for <paramref name="e"/>.</summary>
    public static (int Code, string Line) Describe(Exception e)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } agg) e = agg.InnerExceptions[0];
        return e switch
        {
            UsageException => (UsageExit, e.Message),
            CubFormatException { ImageId: > 0 } c => (FailureExit, $"{c.Message} (--skip-bad leaves such images out)"),
            FileProblemException => (FailureExit, e.Message),
            TrainingDivergedException or DeviceUnavailableException => (FailureExit, e.Message),
            UnauthorizedAccessException => (FailureExit, $"{e.Message} (permission denied)"),
            IOException or InvalidDataException or FormatException or InvalidOperationException or ArgumentException => (FailureExit, e.Message),
            OutOfMemoryException => (FailureExit, $"out of memory ({e.Message}); try a smaller --batch or --res"),
            _ => (FailureExit, $"internal error ({e.GetType().Name}: {e.Message}); rerun with --debug (or {DebugVariable}=1) for the stack trace and report it"),
        };
    }
}
