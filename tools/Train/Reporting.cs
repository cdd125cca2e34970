using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;
using MtlMoe.Train.Progress;
using MtlMoe.Train.Reports;

namespace MtlMoe.Train;

/// <summary>The one place that picks the run reporter and the progress display.</summary>
public static class Reporting
{
    /// <summary>The reporter that writes report.md, the PNG curves and the expert gallery.</summary>
    public static IRunReporter? Create() => new RunReporter();

    /// <summary>A live display on an interactive terminal, plain lines otherwise (or with --plain).</summary>
    public static ITrainingProgress CreateProgress(TrainSettings settings)
        => ProgressFactory.Create(settings.Plain, () => new PlainProgress());
}
