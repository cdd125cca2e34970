using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;
using MtlMoe.Train.Progress;

namespace MtlMoe.Train;

/// <summary>The one place that picks the run reporter and the progress display.</summary>
public static class Reporting
{
    /// <summary>The reporter that writes report.md, plots and the expert gallery (none yet in this build).</summary>
    public static IRunReporter? Create() => null;

    /// <summary>The progress display for <paramref name="settings"/> (plain lines for now).</summary>
    public static ITrainingProgress CreateProgress(TrainSettings settings) => new PlainProgress();
}
