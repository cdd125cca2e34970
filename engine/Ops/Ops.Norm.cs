using MtlMoe.Engine.Amp;
using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// Batch normalisation of x [N, C, H, W] per channel. Training: normalises with the batch mean and
    /// biased variance and updates <paramref name="runningMean"/>/<paramref name="runningVar"/> [C] in place
    /// (untracked) with <paramref name="momentum"/> and the unbiased variance, as PyTorch does. Eval: uses the
    /// running statistics. Gradients flow to x, weight [C] and bias [C] (either may be null: 1 and 0).
    /// </summary>
    public static Tensor BatchNorm2d(Tensor x, Tensor? weight, Tensor? bias, Tensor runningMean, Tensor runningVar,
        bool training, double momentum = 0.1, double eps = 1e-5)
    {
        using (var ac = AutocastArgs.For("batch_norm2d", x, weight, bias))
            if (ac.Changed) return BatchNorm2d(ac.At(0), ac[1], ac[2], runningMean, runningVar, training, momentum, eps);
        CheckBatchNorm2d(x, weight, bias, runningMean, runningVar, training);
        var be = x.Backend;
        var inputs = new List<Tensor> { x };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        bool record = Graph.ShouldRecord(inputs.ToArray());
        Tensor y, mean, invStd;
        if (training)
        {
            var (ys, ms, iss) = be.BatchNorm2dTrainForward(x.StorageView, weight?.StorageView, bias?.StorageView,
                runningMean.StorageView, runningVar.StorageView, momentum, eps);
            y = Tensor.FromStorage(ys, x.Shape);
            mean = Tensor.FromStorage(ms, [x.Shape[1]]);
            invStd = Tensor.FromStorage(iss, [x.Shape[1]]);
        }
        else
        {
            y = Tensor.FromStorage(be.BatchNorm2dEvalForward(x.StorageView, weight?.StorageView, bias?.StorageView,
                runningMean.StorageView, runningVar.StorageView, eps), x.Shape);
            if (!record) return y;
            // The statistics are constants in eval mode; snapshot them (the buffers may change before backward).
            using (GradMode.NoGrad())
            {
                mean = runningMean.Clone();
                using var v = AddScalar(runningVar, eps);
                using var sd = Sqrt(v);
                invStd = RDivScalar(sd, 1);
            }
        }
        if (!record) { mean.Dispose(); invStd.Dispose(); return y; }
        Graph.Record(y, "batch_norm2d", [.. inputs], g =>
        {
            var (dxs, dws, dbs) = g.Backend.BatchNorm2dBackward(g.StorageView, x.StorageView,
                mean.StorageView, invStd.StorageView, weight?.StorageView, training);
            return BatchNormInputGrads(x, weight, bias, dxs, dws, dbs);
        }, saved: [mean, invStd]);
        mean.Dispose(); invStd.Dispose(); // deferred by the graph until the backward has run
        return y;
    }

    // One gradient per recorded input of a batch-norm (x, then weight and bias when given) from the backend's storages.
    private static Tensor?[] BatchNormInputGrads(Tensor x, Tensor? weight, Tensor? bias, Storage dxs, Storage dws, Storage dbs)
    {
        var dx = Tensor.FromStorage(dxs, x.Shape);
        var dw = Tensor.FromStorage(dws, [x.Shape[1]]);
        var db = Tensor.FromStorage(dbs, [x.Shape[1]]);
        var grads = new List<Tensor?> { dx };
        if (weight is not null) grads.Add(dw); else dw.Dispose();
        if (bias is not null) grads.Add(db); else db.Dispose();
        return [.. grads];
    }

    private static void CheckBatchNorm2d(Tensor x, Tensor? w, Tensor? b, Tensor rm, Tensor rv, bool training)
    {
        RequireFloat("batch_norm2d", x);
        if (x.Rank != 4) throw new ShapeException($"batch_norm2d: input must be [N, C, H, W], got {Shapes.Format(x.Shape)}");
        int c = x.Shape[1];
        foreach (var (name, t) in new[] { ("weight", w), ("bias", b), ("running_mean", rm), ("running_var", rv) })
        {
            if (t is null) continue;
            SameDevice("batch_norm2d", x, t);
            // A bf16 activation takes float32 statistics and parameters (autocast); otherwise all share x's dtype.
            if (!(x.DType == DType.BFloat16 && t.DType == DType.Float32)) SameDType("batch_norm2d", x, t);
            if (t.Rank != 1 || t.Shape[0] != c)
                throw new ShapeException($"batch_norm2d: {name} {Shapes.Format(t.Shape)} does not match input {Shapes.Format(x.Shape)} ({c} channels)");
        }
        if (training && (long)x.Shape[0] * x.Shape[2] * x.Shape[3] < 2)
            throw new ShapeException($"batch_norm2d: training needs more than one value per channel, got input {Shapes.Format(x.Shape)}");
    }
}
