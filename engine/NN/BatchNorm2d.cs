namespace MtlMoe.Engine.NN;

/// <summary>
/// Batch normalisation over x [N, C, H, W] with learnable weight (ones) and bias (zeros) and the buffers
/// running_mean (zeros), running_var (ones) and num_batches_tracked (Int64 scalar) — torchvision's names.
/// Training mode normalises with batch statistics and updates the running ones; eval mode uses them.
/// </summary>
public sealed class BatchNorm2d : Module
{
    /// <summary>γ [C]</summary>
    public Tensor Weight { get; }
    /// <summary>β [C]</summary>
    public Tensor Bias { get; }
    /// <summary>[C]</summary>
    public Tensor RunningMean { get; }
    /// <summary>[C]</summary>
    public Tensor RunningVar { get; }
    /// <summary>Int64 scalar: training forwards so far.</summary>
    public Tensor NumBatchesTracked { get; }
    /// <summary>Weight of the newest batch in the running statistics.</summary>
    public double Momentum { get; }
    /// <summary>Added to the variance before the square root.</summary>
    public double Eps { get; }

    /// <summary>A layer over <paramref name="channels"/> channels.</summary>
    public BatchNorm2d(int channels, double momentum = 0.1, double eps = 1e-5, DType dtype = DType.Float32)
    {
        if (channels <= 0) throw new ArgumentException($"batch_norm2d: channels must be positive, got {channels}");
        Momentum = momentum; Eps = eps;
        Weight = RegisterParameter("weight", DisposeScope.Outside(() => Tensor.Ones([channels], dtype)));
        Bias = RegisterParameter("bias", DisposeScope.Outside(() => Tensor.Zeros([channels], dtype)));
        RunningMean = RegisterBuffer("running_mean", DisposeScope.Outside(() => Tensor.Zeros([channels], dtype)));
        RunningVar = RegisterBuffer("running_var", DisposeScope.Outside(() => Tensor.Ones([channels], dtype)));
        NumBatchesTracked = RegisterBuffer("num_batches_tracked", DisposeScope.Outside(() => Tensor.Zeros([], DType.Int64)));
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor x)
    {
        var y = Ops.BatchNorm2d(x, Weight, Bias, RunningMean, RunningVar, Training, Momentum, Eps);
        if (Training) NumBatchesTracked.Fill(NumBatchesTracked.Item() + 1);
        return y;
    }

    /// <summary>relu(batch_norm(x)) in one fused pass (what a conv → BN → ReLU stack wants).</summary>
    public Tensor ForwardRelu(Tensor x)
    {
        var y = Ops.BatchNormRelu(x, Weight, Bias, RunningMean, RunningVar, Training, Momentum, Eps);
        if (Training) NumBatchesTracked.Fill(NumBatchesTracked.Item() + 1);
        return y;
    }
    /// <summary>relu(batch_norm(x) + residual) in one fused pass (a residual block's tail); residual: x's shape.</summary>
    public Tensor ForwardAddRelu(Tensor x, Tensor residual)
    {
        var y = Ops.BatchNormAddRelu(x, residual, Weight, Bias, RunningMean, RunningVar, Training, Momentum, Eps);
        if (Training) NumBatchesTracked.Fill(NumBatchesTracked.Item() + 1);
        return y;
    }
}
