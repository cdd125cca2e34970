using MtlMoe.Model.Training;
using MtlMoe.Train.Reports;

namespace MtlMoe.Train.Progress;

/// <summary>
/// The fixed-width per-epoch table printed while training (the live display and plain lines can share it).
/// With up to 4 experts a row fits an 80-column terminal; the variable-width expert loads come last.
/// </summary>
public static class EpochRowFormat
{
    /// <summary>The column header line (trLoss/teLoss = train/test loss; top-1, top-5, mIoU, IoU≥.5 are on the test split).</summary>
    public static string Header { get; } =
        $"{"ep",3} {"trLoss",6} {"teLoss",6} {"top-1",6} {"top-5",6} {"mIoU",5} {"IoU≥.5",6} {"lr",7} {"sec",5}  expert load";

    /// <summary>One epoch's line, aligned under <see cref="Header"/>.</summary>
    public static string Row(EpochMetrics m) =>
        $"{m.Epoch,3} {Fmt.Num(m.TrainLoss, 3),6} {Fmt.Num(m.TestLoss, 3),6} {Fmt.Pct(m.TestTop1),6} {Fmt.Pct(m.TestTop5),6} " +
        $"{Fmt.Num(m.TestMeanIoU, 3),5} {Fmt.Pct(m.TestIoU50),6} {Fmt.Lr(m.LearningRate),7} {Fmt.Num(m.Seconds, 1),5}  {Fmt.Loads(m.ExpertLoad)}";
}
