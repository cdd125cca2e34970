using MtlMoe.Model.Data;
using MtlMoe.Model.Training;

namespace MtlMoe.Train.Reports;

/// <summary>
/// The run folder's pictures and reports: after every epoch the curves (loss.png, accuracy.png, iou.png,
/// expert_load.png, lr.png); at the end report.md and the expert gallery (gallery/expert_&lt;e&gt;.png, gallery/index.md);
/// after <c>ablate</c> ablation.md, ablation.png and ablation_curves.png. Every file is written atomically.
/// </summary>
public sealed class RunReporter(ImageLoader? loader = null) : IRunReporter
{
    private readonly ImageLoader _loader = loader ?? ImageLoader.Default;

    /// <inheritdoc/>
    public void EpochFinished(string runDir, IReadOnlyList<EpochMetrics> history) => RunPlots.WriteAll(runDir, history);

    /// <inheritdoc/>
    public void RunFinished(string runDir, string config, IReadOnlyList<EpochMetrics> history, EvalResult final, int numExperts)
    {
        var plots = RunPlots.WriteAll(runDir, history);
        var gallery = ExpertGallery.Write(runDir, final, numExperts, _loader);
        RunReport.Write(runDir, config, history, final, numExperts, plots, gallery);
    }

    /// <inheritdoc/>
    public void AblationFinished(string dir, IReadOnlyList<AblationRow> rows) => AblationReport.Write(dir, rows);
}
