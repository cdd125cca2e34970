namespace MtlMoe.Engine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// Batch-norm training forward over x [N, C, H, W] with per-channel statistics over (N, H, W):
    /// y = (x − mean)·invStd·weight + bias with invStd = 1/√(biased var + eps). Returns y (contiguous,
    /// like x), and the saved mean [C] and invStd [C] the backward reads. Updates
    /// <paramref name="runningMean"/>/<paramref name="runningVar"/> [C] in place:
    /// r ← (1 − momentum)·r + momentum·batch, with the UNBIASED batch variance (PyTorch).
    /// A null weight means 1, a null bias 0.
    /// </summary>
    (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dTrainForward(StorageView x,
        StorageView? weight, StorageView? bias,
        StorageView runningMean, StorageView runningVar,
        double momentum, double eps);

    /// <summary>
    /// Batch-norm eval forward with the running statistics [C]: y = (x − runningMean)/√(runningVar + eps)·weight + bias.
    /// </summary>
    Storage BatchNorm2dEvalForward(StorageView x, StorageView? weight, StorageView? bias,
        StorageView runningMean, StorageView runningVar, double eps);

    /// <summary>
    /// Batch-norm backward from dy [N, C, H, W], x, and the statistics used in the forward (mean, invStd [C]).
    /// With <paramref name="batchStats"/> the statistics were computed from x (training) and dx includes
    /// their gradient; otherwise they were constants (eval). Returns dx, dweight [C] and dbias [C]
    /// (dweight = Σ dy·x̂, dbias = Σ dy, computed whatever weight is).
    /// </summary>
    (Storage Dx, Storage DWeight, Storage DBias) BatchNorm2dBackward(StorageView dy, StorageView x,
        StorageView mean, StorageView invStd, StorageView? weight, bool batchStats);
}
