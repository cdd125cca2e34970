namespace MtlMoe.Engine.Optim;

/// <summary>Gradient clipping.</summary>
public static class GradClip
{
    /// <summary>
    /// Scales every gradient in place by maxNorm / (norm + 1e-6) when the global L2 norm over all
    /// gradients exceeds <paramref name="maxNorm"/>; returns the norm before clipping. Parameters without
    /// a gradient are ignored. A non-finite norm is returned and nothing is scaled.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "clip_grad_norm: max norm must be > 0");
        var grads = parameters.Select(p => p.Grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0) return 0;
        using var _ = Autograd.GradMode.NoGrad();
        double sumSq = 0;
        foreach (var g in grads)
        {
            // Per-tensor sums in the gradient's dtype, combined in double.
            using var sq = Ops.Mul(g, g);
            using var s = Ops.Sum(sq);
            sumSq += s.Item();
        }
        double norm = Math.Sqrt(sumSq);
        if (!double.IsFinite(norm) || norm <= maxNorm) return norm;
        double coef = maxNorm / (norm + 1e-6);
        foreach (var g in grads)
        {
            using var scaled = Ops.MulScalar(g, coef);
            g.CopyFrom(scaled);
        }
        return norm;
    }
}
