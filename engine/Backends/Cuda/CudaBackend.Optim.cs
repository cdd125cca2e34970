namespace MtlMoe.Engine.Backends.Cuda;

// Fused optimizer updates (kernels/optim.cu), in place, one thread per element.
public sealed partial class CudaBackend
{
    static void RequireMasterWeights(string op, DType t)
    {
        if (t is not (DType.Float32 or DType.Float64))
            throw new NotSupportedException($"{op} on cuda: parameters must be float32 or float64 (master weights and optimizer state stay float32 under autocast), got {t.Name()}");
    }

    /// <inheritdoc />
    public void SgdUpdate(StorageView paramView, StorageView gradView, StorageView? momentumBufferView,
        double lr, double momentum, double dampening, double weightDecay, bool nesterov, bool initBuffer)
    {
        var (param, paramLayout) = paramView;
        var (grad, gradLayout) = gradView;
        var (momentumBuffer, bufferLayout) = StorageView.SplitNullable(momentumBufferView);
        RequireMasterWeights("sgd", param.DType);
        int n = paramLayout.Count;
        var t = param.DType;
        var a = new KernelArgs().Add((long)n).Add(P(param, paramLayout, "sgd")).Add(P(grad, gradLayout, "sgd"))
            .Add(momentumBuffer is null ? default : P(momentumBuffer, bufferLayout!.Value, "sgd"));
        AddScalar(a, t, lr); AddScalar(a, t, momentumBuffer is null ? 0 : momentum); AddScalar(a, t, dampening); AddScalar(a, t, weightDecay);
        Launch("optim", "sgd_momentum_" + Sfx(t), n, a.Add(nesterov ? 1 : 0).Add(initBuffer ? 1 : 0));
    }

    /// <inheritdoc />
    public void AdamWUpdate(StorageView paramView, StorageView gradView, StorageView mView, StorageView vView,
        double lr, double beta1, double beta2, double eps, double weightDecay, double biasCorrection1, double biasCorrection2)
    {
        var (param, paramLayout) = paramView;
        var (grad, gradLayout) = gradView;
        var (m, mLayout) = mView;
        var (v, vLayout) = vView;
        RequireMasterWeights("adamw", param.DType);
        int n = paramLayout.Count;
        var t = param.DType;
        var a = new KernelArgs().Add((long)n).Add(P(param, paramLayout, "adamw")).Add(P(grad, gradLayout, "adamw"))
            .Add(P(m, mLayout, "adamw")).Add(P(v, vLayout, "adamw"));
        foreach (var s in new[] { lr, beta1, beta2, eps, weightDecay, biasCorrection1, biasCorrection2 }) AddScalar(a, t, s);
        Launch("optim", "adamw_" + Sfx(t), n, a);
    }
}
