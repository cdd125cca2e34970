namespace MtlMoe.Engine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// One fused SGD step for one parameter, updating storages in place (PyTorch's rule):
    /// d = g + wd·p; with momentum, buf = d on the first step (<paramref name="initBuffer"/>) else
    /// buf = μ·buf + (1 − dampening)·d, and d = d + μ·buf (Nesterov) or d = buf; then p = p − lr·d.
    /// param, grad and momentumBuffer (null when μ = 0) are contiguous layouts of the same count and dtype.
    /// </summary>
    void SgdUpdate(StorageView param, StorageView grad, StorageView? momentumBuffer,
        double lr, double momentum, double dampening, double weightDecay, bool nesterov, bool initBuffer);

    /// <summary>
    /// One fused AdamW step for one parameter, updating p, m and v in place (PyTorch's rule):
    /// p = p·(1 − lr·wd); m = lerp(m, g, 1 − β₁); v = β₂·v + (1 − β₂)·g²;
    /// p = p − (lr / bc1)·m / (√v / √bc2 + ε), with bc1 = 1 − β₁ᵗ and bc2 = 1 − β₂ᵗ given by the caller.
    /// All four layouts are contiguous, with the same count and dtype.
    /// </summary>
    void AdamWUpdate(StorageView param, StorageView grad, StorageView m, StorageView v,
        double lr, double beta1, double beta2, double eps, double weightDecay, double biasCorrection1, double biasCorrection2);
}
