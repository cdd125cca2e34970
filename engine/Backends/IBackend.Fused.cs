namespace MtlMoe.Engine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// ReLU backward: dx = dy where y &gt; 0, else 0, from dy and the ReLU output y (same shape, any layouts) → a
    /// contiguous dx. The default composes <see cref="Unary"/> (GtScalar) and <see cref="Binary"/> (Mul); a
    /// backend overrides it with one fused pass.
    /// </summary>
    Storage ReluBackward(StorageView dy, StorageView y) => ReluBackwardComposed(dy, y);

    /// <summary><see cref="ReluBackward"/> composed: a y &gt; 0 mask (<see cref="Unary"/> GtScalar) times dy (<see cref="Binary"/> Mul).</summary>
    Storage ReluBackwardComposed(StorageView dy, StorageView y)
    {
        var mask = Unary(UnaryOp.GtScalar, y, 0); // mask: contiguous, like y
        try { return Binary(BinaryOp.Mul, dy, StorageView.Dense(mask, y.Shape)); }
        finally { mask.Release(); }
    }
}

public partial interface IBackend
{
    /// <summary>
    /// relu(batch_norm2d(x)) in training mode: as <see cref="BatchNorm2dTrainForward"/> (same statistics and
    /// running-stat update) with ReLU applied to y. The default composes the two primitives; a backend fuses them.
    /// </summary>
    (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dReluTrainForward(StorageView x, StorageView? weight, StorageView? bias,
        StorageView runningMean, StorageView runningVar, double momentum, double eps)
    {
        var (y, mean, invStd) = BatchNorm2dTrainForward(x, weight, bias, runningMean, runningVar, momentum, eps);
        try { return (Unary(UnaryOp.Relu, StorageView.Dense(y, x.Shape)), mean, invStd); }
        finally { y.Release(); }
    }

    /// <summary>
    /// Backward of relu(batch_norm2d(x)) from dy and the fused output y (the ReLU mask is y &gt; 0): as
    /// <see cref="BatchNorm2dBackward"/> applied to the masked dy. The default composes <see cref="ReluBackward"/>
    /// and <see cref="BatchNorm2dBackward"/>.
    /// </summary>
    (Storage Dx, Storage DWeight, Storage DBias) BatchNorm2dReluBackward(StorageView dy, StorageView y, StorageView x,
        StorageView mean, StorageView invStd, StorageView? weight, bool batchStats)
    {
        var dz = ReluBackward(dy, y); // dz: contiguous, like y
        try { return BatchNorm2dBackward(StorageView.Dense(dz, y.Shape), x, mean, invStd, weight, batchStats); }
        finally { dz.Release(); }
    }
}

public partial interface IBackend
{
    /// <summary>
    /// relu(batch_norm2d(x) + residual) in training mode — a residual block's tail: as
    /// <see cref="BatchNorm2dTrainForward"/> (same statistics and running-stat update), then the residual
    /// (same shape as x, any layout) added and ReLU applied. The backward is <see cref="ReluBackward"/> with
    /// this y (y &gt; 0 is the tail's ReLU mask), whose result is the residual's gradient and <see cref="BatchNorm2dBackward"/>'s dy.
    /// The default composes the primitives; a backend fuses them into one pass.
    /// </summary>
    (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dAddReluTrainForward(StorageView x, StorageView residual,
        StorageView? weight, StorageView? bias, StorageView runningMean, StorageView runningVar, double momentum, double eps)
        => ComposeBatchNorm2dAddRelu(this, x, residual, weight, bias, runningMean, runningVar, momentum, eps);

    /// <summary>
    /// <see cref="BatchNorm2dAddReluTrainForward"/> composed from <paramref name="backend"/>'s primitives: batch-norm, then
    /// <see cref="Binary"/> Add, then <see cref="Unary"/> Relu (the default, and a backend's fallback when its fused pass is off).
    /// </summary>
    static (Storage Y, Storage Mean, Storage InvStd) ComposeBatchNorm2dAddRelu(IBackend backend, StorageView x, StorageView residual,
        StorageView? weight, StorageView? bias, StorageView runningMean, StorageView runningVar, double momentum, double eps)
    {
        var (y, mean, invStd) = backend.BatchNorm2dTrainForward(x, weight, bias, runningMean, runningVar, momentum, eps);
        Storage? sum = null;
        try
        {
            sum = backend.Binary(BinaryOp.Add, StorageView.Dense(y, x.Shape), residual); // sum: contiguous, like x
            return (backend.Unary(UnaryOp.Relu, StorageView.Dense(sum, x.Shape)), mean, invStd);
        }
        finally { y.Release(); sum?.Release(); }
    }
}
