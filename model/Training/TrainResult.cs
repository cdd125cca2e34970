namespace MtlMoe.Model.Training;

/// <summary>What a finished <see cref="Trainer.Run"/> returns.</summary>
/// <param name="History">Every epoch's metrics (including epochs before a resume).</param>
/// <param name="Final">Evaluation of the test split after the last epoch, with every image's prediction.</param>
/// <param name="BestTop1">Best test top-1 over the epochs.</param>
/// <param name="BestEpoch">Its epoch (1-based).</param>
/// <param name="Seconds">Wall time of this process's part of the run.</param>
public sealed record TrainResult(IReadOnlyList<EpochMetrics> History, EvalResult Final, double BestTop1, int BestEpoch, double Seconds);
