using MtlMoe.Engine.Amp;
using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// relu(<see cref="BatchNorm2d"/>(x, …)) as one op: in training the backend normalises and clamps in one pass
    /// and the backward masks dy by y &gt; 0 inside batch-norm's own passes (no separate ReLU tensor or node).
    /// Same arguments, statistics and running-stat update as <see cref="BatchNorm2d"/>; eval mode composes the two ops.
    /// </summary>
    public static Tensor BatchNormRelu(Tensor x, Tensor? weight, Tensor? bias, Tensor runningMean, Tensor runningVar,
        bool training, double momentum = 0.1, double eps = 1e-5)
    {
        using (var ac = AutocastArgs.For("batch_norm2d_relu", x, weight, bias))
            if (ac.Changed) return BatchNormRelu(ac.At(0), ac[1], ac[2], runningMean, runningVar, training, momentum, eps);
        if (!training)
        {
            using var b = BatchNorm2d(x, weight, bias, runningMean, runningVar, training: false, momentum, eps);
            return Relu(b);
        }
        CheckBatchNorm2d(x, weight, bias, runningMean, runningVar, training);
        var be = x.Backend;
        var inputs = new List<Tensor> { x };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        var (ys, ms, iss) = be.BatchNorm2dReluTrainForward(x.StorageView, weight?.StorageView, bias?.StorageView,
            runningMean.StorageView, runningVar.StorageView, momentum, eps);
        var y = Tensor.FromStorage(ys, x.Shape);                // y: [N, C, H, W], ≥ 0
        var mean = Tensor.FromStorage(ms, [x.Shape[1]]);        // [C]
        var invStd = Tensor.FromStorage(iss, [x.Shape[1]]);     // [C]
        if (!Graph.ShouldRecord(inputs.ToArray())) { mean.Dispose(); invStd.Dispose(); return y; }
        Graph.Record(y, "batch_norm2d_relu", [.. inputs], g =>
        {
            var (dxs, dws, dbs) = g.Backend.BatchNorm2dReluBackward(g.StorageView, y.StorageView, x.StorageView,
                mean.StorageView, invStd.StorageView, weight?.StorageView, batchStats: true);
            return BatchNormInputGrads(x, weight, bias, dxs, dws, dbs);
        }, saved: [mean, invStd]);
        mean.Dispose(); invStd.Dispose(); // deferred by the graph until the backward has run
        return y;
    }
    /// <summary>
    /// relu(<see cref="BatchNorm2d"/>(x, …) + residual) as one op — a residual block's tail: in training the backend
    /// normalises, adds and clamps in one pass; the backward masks dy by y &gt; 0 once and hands that to both
    /// the batch-norm backward and the residual. <paramref name="residual"/> must have x's shape (no broadcasting), any layout.
    /// Same statistics and running-stat update as <see cref="BatchNorm2d"/>; eval mode composes the three ops.
    /// </summary>
    public static Tensor BatchNormAddRelu(Tensor x, Tensor residual, Tensor? weight, Tensor? bias, Tensor runningMean, Tensor runningVar,
        bool training, double momentum = 0.1, double eps = 1e-5)
    {
        using (var ac = AutocastArgs.For("batch_norm2d_add_relu", x, weight, bias))
            if (ac.Changed) return BatchNormAddRelu(ac.At(0), residual, ac[1], ac[2], runningMean, runningVar, training, momentum, eps);
        // The residual is a second activation: a mixed bf16/float32 pair promotes both to float32 (as add does).
        using (var ar = AutocastArgs.For("add", x, residual))
            if (ar.Changed) return BatchNormAddRelu(ar.At(0), ar.At(1), weight, bias, runningMean, runningVar, training, momentum, eps);
        CheckBatchNorm2d(x, weight, bias, runningMean, runningVar, training);
        SameDevice("batch_norm2d_add_relu", x, residual); SameDType("batch_norm2d_add_relu", x, residual);
        if (!residual.Shape.SequenceEqual(x.Shape))
            throw new ShapeException($"batch_norm2d_add_relu: residual {Shapes.Format(residual.Shape)} must have the input's shape {Shapes.Format(x.Shape)}");
        if (!training)
        {
            using var b = BatchNorm2d(x, weight, bias, runningMean, runningVar, training: false, momentum, eps);
            using var s = Add(b, residual);
            return Relu(s);
        }
        var be = x.Backend;
        var inputs = new List<Tensor> { x };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        inputs.Add(residual);
        var (ys, ms, iss) = be.BatchNorm2dAddReluTrainForward(x.StorageView, residual.StorageView,
            weight?.StorageView, bias?.StorageView, runningMean.StorageView, runningVar.StorageView, momentum, eps);
        var y = Tensor.FromStorage(ys, x.Shape);                // y: [N, C, H, W], ≥ 0
        var mean = Tensor.FromStorage(ms, [x.Shape[1]]);        // [C]
        var invStd = Tensor.FromStorage(iss, [x.Shape[1]]);     // [C]
        if (!Graph.ShouldRecord(inputs.ToArray())) { mean.Dispose(); invStd.Dispose(); return y; }
        Graph.Record(y, "batch_norm2d_add_relu", [.. inputs], g =>
        {
            // dz = dy·[y > 0] is both the residual's gradient and the batch-norm's dy (computed once; the
            // batch-norm backward then streams dz and x only, not dy, y and x).
            var dz = g.Backend.ReluBackward(g.StorageView, y.StorageView); // dz: contiguous, like x
            var (dxs, dws, dbs) = g.Backend.BatchNorm2dBackward(Backends.StorageView.Dense(dz, x.Shape), x.StorageView,
                mean.StorageView, invStd.StorageView, weight?.StorageView, batchStats: true);
            var dres = Tensor.FromStorage(dz, x.Shape);
            return [.. BatchNormInputGrads(x, weight, bias, dxs, dws, dbs), dres];
        }, saved: [mean, invStd]);
        mean.Dispose(); invStd.Dispose(); // deferred by the graph until the backward has run
        return y;
    }
}
