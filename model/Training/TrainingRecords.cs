namespace MtlMoe.Model.Training;

/// <summary>One epoch's figures, as metrics.csv, the live table and the plots show them.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="TrainLoss">Mean total loss over the epoch's training batches.</param>
/// <param name="TrainClassLoss">Mean cross-entropy part.</param>
/// <param name="TrainBoxLoss">Mean box-loss part (smooth-L1 + GIoU), 0 for variants without a box.</param>
/// <param name="TrainAuxLoss">Mean MoE load-balancing loss, 0 without MoE.</param>
/// <param name="TrainTop1">Training top-1 accuracy in [0, 1] (on augmented batches).</param>
/// <param name="TestLoss">Mean total loss on the test split.</param>
/// <param name="TestTop1">Test top-1 accuracy in [0, 1].</param>
/// <param name="TestTop5">Test top-5 accuracy in [0, 1].</param>
/// <param name="TestMeanIoU">Mean IoU of predicted and true boxes on the test split (NaN without a box head).</param>
/// <param name="TestIoU50">Share of test boxes with IoU ≥ 0.5 (NaN without a box head).</param>
/// <param name="ExpertLoad">Per expert: test rows routed to it divided by the ideal B·k/E (1 = balanced).</param>
/// <param name="LearningRate">Learning rate at the end of the epoch.</param>
/// <param name="Seconds">Wall time of the epoch including evaluation.</param>
/// <param name="ImagesPerSecond">Training throughput.</param>
public sealed record EpochMetrics(
    int Epoch, double TrainLoss, double TrainClassLoss, double TrainBoxLoss, double TrainAuxLoss, double TrainTop1,
    double TestLoss, double TestTop1, double TestTop5, double TestMeanIoU, double TestIoU50,
    double[] ExpertLoad, double LearningRate, double Seconds, double ImagesPerSecond);

/// <summary>What the model said about one test image.</summary>
/// <param name="ImageId">CUB image id.</param>
/// <param name="ImagePath">Full path of the image file, when it came from disk.</param>
/// <param name="TrueClass">0-based true class.</param>
/// <param name="Top5">0-based classes, most probable first (fewer when there are fewer classes).</param>
/// <param name="Top5Probabilities">Their softmax probabilities.</param>
/// <param name="TrueBox">True box (x0, y0, x1, y1) normalised to the evaluated crop.</param>
/// <param name="PredictedBox">Predicted box, same convention; null without a box head.</param>
/// <param name="Experts">Experts the image was routed to (k of them); a single 0 without MoE.</param>
/// <param name="Gates">Their gate values (summing to 1).</param>
public sealed record SamplePrediction(
    int ImageId, string? ImagePath, int TrueClass, int[] Top5, double[] Top5Probabilities,
    float[] TrueBox, float[]? PredictedBox, int[] Experts, double[] Gates)
{
    /// <summary>The top-1 prediction.</summary>
    public int PredictedClass => Top5[0];

    /// <summary>IoU of the predicted and true boxes (NaN without a prediction).</summary>
    public double IoU => PredictedBox is null ? double.NaN : BoxIoU(PredictedBox, TrueBox);

    /// <summary>IoU of two (x0, y0, x1, y1) boxes.</summary>
    public static double BoxIoU(float[] a, float[] b)
    {
        double ix = Math.Max(0, Math.Min(a[2], b[2]) - Math.Max(a[0], b[0]));
        double iy = Math.Max(0, Math.Min(a[3], b[3]) - Math.Max(a[1], b[1]));
        double inter = ix * iy;
        double union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
        return union > 0 ? inter / union : 0;
    }
}

/// <summary>A full evaluation of the test split.</summary>
/// <param name="Loss">Mean total loss.</param>
/// <param name="Top1">Top-1 accuracy in [0, 1].</param>
/// <param name="Top5">Top-5 accuracy in [0, 1].</param>
/// <param name="MeanIoU">Mean box IoU (NaN without a box head).</param>
/// <param name="IoU50">Share of boxes with IoU ≥ 0.5 (NaN without a box head).</param>
/// <param name="ExpertLoad">Per expert: rows routed / ideal.</param>
/// <param name="Samples">Every test image's prediction, in data-set order.</param>
/// <param name="ClassNames">Names of the classes, by 0-based index.</param>
/// <param name="CropSize">Side of the square crop the model saw (boxes are normalised to it).</param>
/// <param name="ResizeSize">Size the image was resized to before the centre crop.</param>
public sealed record EvalResult(
    double Loss, double Top1, double Top5, double MeanIoU, double IoU50, double[] ExpertLoad,
    IReadOnlyList<SamplePrediction> Samples, IReadOnlyList<string> ClassNames, int CropSize, int ResizeSize);

/// <summary>One line of the ablation comparison.</summary>
/// <param name="Variant">single, moe, mtl or mtl-moe.</param>
/// <param name="FinalTop1">Test top-1 after the last epoch.</param>
/// <param name="BestTop1">Best test top-1 over the epochs.</param>
/// <param name="FinalMeanIoU">Test mean IoU after the last epoch (NaN without a box head).</param>
/// <param name="EpochsToTarget">First epoch reaching <see cref="TargetTop1"/>, null if never.</param>
/// <param name="TargetTop1">The accuracy threshold used for <see cref="EpochsToTarget"/>.</param>
/// <param name="Seconds">Training wall time.</param>
/// <param name="History">Every epoch's metrics.</param>
/// <param name="Seed">The seed of this run (ablate --seeds N trains every variant with N seeds).</param>
public sealed record AblationRow(
    string Variant, double FinalTop1, double BestTop1, double FinalMeanIoU, int? EpochsToTarget, double TargetTop1,
    double Seconds, IReadOnlyList<EpochMetrics> History, ulong Seed = 1);

/// <summary>Receives progress while training runs (a live display on a terminal, plain lines otherwise).</summary>
public interface ITrainingProgress : IDisposable
{
    /// <summary>A run starts: total epochs and training batches per epoch.</summary>
    void BeginRun(string title, int epochs, int batchesPerEpoch);
    /// <summary>A training batch finished: running means over the epoch so far.</summary>
    void Batch(int epoch, int batch, double loss, double top1, double imagesPerSecond);
    /// <summary>Evaluation of the test split started (so the display can say so).</summary>
    void Evaluating(int epoch);
    /// <summary>An epoch finished with its metrics.</summary>
    void EndEpoch(EpochMetrics metrics);
    /// <summary>A free-form message (checkpoint written, resumed from …, warnings).</summary>
    void Message(string text);
}

/// <summary>Writes a run folder's reports; called by the trainer at the end of every epoch and of the run.</summary>
public interface IRunReporter
{
    /// <summary>After each epoch: e.g. refresh plots from the history so far.</summary>
    void EpochFinished(string runDir, IReadOnlyList<EpochMetrics> history);
    /// <summary>At the end: report.md, plots, the expert gallery. <paramref name="config"/> is config.json's content.</summary>
    void RunFinished(string runDir, string config, IReadOnlyList<EpochMetrics> history, EvalResult final, int numExperts);
    /// <summary>After <c>ablate</c>: a comparison table (markdown) and chart (PNG) in <paramref name="dir"/>.</summary>
    void AblationFinished(string dir, IReadOnlyList<AblationRow> rows);
}
