namespace MtlMoe.Engine.Backends.Cuda;

// Batch norm through kernels/norm.cu rather than cuDNN: the kernels keep PyTorch's semantics exactly (unbiased
// running variance, eval backward with constant statistics, null weight/bias) and reduce in a fixed order, so
// training on the GPU is reproducible bit for bit. x is viewed as dense [N, C, HW]; channel vectors are [C].
// bf16 activations (x, y, dy, dx, the residual) take the _bf16 kernels; their statistics, parameters and parameter
// gradients are float32. The fused forms (+ReLU, +residual+ReLU) are one pass each, like the CPU's.
public sealed partial class CudaBackend
{
    /// <summary>The dtype of statistics and parameters for activations of <paramref name="x"/> (float32 for bf16).</summary>
    static DType ParamType(DType x) => x == DType.BFloat16 ? DType.Float32 : x;

    /// <summary>Dense [C] copy (or reference) of an optional channel vector in dtype <paramref name="t"/>; null becomes <paramref name="fill"/>.</summary>
    CudaStorage Channel(Storage? s, Layout l, int c, DType t, double fill, string op)
    {
        if (s is not null) return s.DType == t ? Dense(s, l, op) : (CudaStorage)Cast(new(s, l), t);
        var r = New(t, c);
        Fill(StorageView.Dense(r, [c]), fill);
        return r;
    }

    static (int N, int C, long HW) Nchw(Layout lx) => (lx.Shape[0], lx.Shape[1], lx.Count / Math.Max(1, (long)lx.Shape[0] * lx.Shape[1]));

    void RequireDenseInPlace(string op, Layout l)
    {
        if (!l.IsContiguous) throw new NotSupportedException($"{op} on cuda: running statistics must be contiguous ({l})");
    }

    static void RequireNormDType(string op, DType x) => RequireDType(op, x, DType.Float32, DType.Float64, DType.BFloat16);

    /// <inheritdoc />
    public (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dTrainForward(StorageView xView,
        StorageView? weightView, StorageView? biasView,
        StorageView runningMeanView, StorageView runningVarView, double momentum, double eps)
        => BnTrain(xView, null, weightView, biasView, runningMeanView, runningVarView, momentum, eps, relu: false, "batch_norm2d");

    /// <inheritdoc />
    public (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dReluTrainForward(StorageView x, StorageView? weight, StorageView? bias,
        StorageView runningMean, StorageView runningVar, double momentum, double eps)
        => BnTrain(x, null, weight, bias, runningMean, runningVar, momentum, eps, relu: true, "batch_norm2d_relu");

    /// <inheritdoc />
    public (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dAddReluTrainForward(StorageView x, StorageView residual,
        StorageView? weight, StorageView? bias, StorageView runningMean, StorageView runningVar, double momentum, double eps)
        => x.DType == DType.Float64   // no float64 kernel of the residual tail: compose
            ? IBackend.ComposeBatchNorm2dAddRelu(this, x, residual, weight, bias, runningMean, runningVar, momentum, eps)
            : BnTrain(x, residual, weight, bias, runningMean, runningVar, momentum, eps, relu: true, "batch_norm2d_add_relu");

    // Statistics (bn_stats), then one apply pass: plain, +ReLU (bn_relu_forward, relu = 1) or +residual+ReLU (bn_add_relu_forward).
    (Storage, Storage, Storage) BnTrain(StorageView xView, StorageView? residualView, StorageView? weightView, StorageView? biasView,
        StorageView runningMeanView, StorageView runningVarView, double momentum, double eps, bool relu, string op)
    {
        var (x, lx) = xView;
        var (weight, lweight) = StorageView.Split(weightView);
        var (bias, lbias) = StorageView.Split(biasView);
        var (runningMean, lrunningMean) = runningMeanView;
        var (runningVar, lrunningVar) = runningVarView;
        RequireNormDType(op, x.DType);
        RequireDenseInPlace(op, lrunningMean); RequireDenseInPlace(op, lrunningVar);
        var (n, c, hw) = Nchw(lx);
        var t = x.DType; var pt = ParamType(t);
        if (runningMean.DType != pt || runningVar.DType != pt)
            throw new NotSupportedException($"{op} on cuda: {t.Name()} activations need {pt.Name()} running statistics (updated in place), got {runningMean.DType.Name()}");
        bool nhwc = ChannelsLastFor(t);
        string k = nhwc ? "nhwc_" + Sfx(t) : Sfx(t);
        using var owned = new Owned();
        var px = Activation(xView, nhwc, owned, op);
        var g = Channel(weight, lweight, c, pt, 1, op); var b = Channel(bias, lbias, c, pt, 0, op);
        owned.Own(new Releaser(g)); owned.Own(new Releaser(b));
        var mean = New(pt, c); var invStd = New(pt, c);
        var y = nhwc ? NewNhwc(t, lx.Shape) : New(t, lx.Count);
        var a = new KernelArgs().Add((long)n).Add((long)c).Add(hw).Add(px);
        AddScalar(a, pt, eps); AddScalar(a, pt, momentum);
        Context.Launch("norm", "bn_stats_" + k, Math.Min(c, 1 << 20), 256,
            a.Add(mean.Ptr).Add(invStd.Ptr).Add(P(runningMean, lrunningMean, op)).Add(P(runningVar, lrunningVar, op)));
        if (residualView is { } rv)
        {
            if (rv.DType != t) throw new InvalidOperationException($"{op}: residual {rv.DType.Name()} and input {t.Name()} differ");
            var pr = Activation(rv, nhwc, owned, op);
            Launch("norm", "bn_add_relu_forward_" + k, lx.Count, new KernelArgs().Add((long)n).Add((long)c).Add(hw).Add(px).Add(pr)
                .Add(mean.Ptr).Add(invStd.Ptr).Add(g.Ptr).Add(b.Ptr).Add(y.Ptr));
        }
        else
            Launch("norm", "bn_relu_forward_" + k, lx.Count, new KernelArgs().Add((long)n).Add((long)c).Add(hw).Add(px)
                .Add(mean.Ptr).Add(invStd.Ptr).Add(g.Ptr).Add(b.Ptr).Add(relu ? 1 : 0).Add(y.Ptr));
        return (y, mean, invStd);
    }

    /// <inheritdoc />
    public Storage BatchNorm2dEvalForward(StorageView xView, StorageView? weightView, StorageView? biasView,
        StorageView runningMeanView, StorageView runningVarView, double eps)
    {
        var (x, lx) = xView;
        var (weight, lweight) = StorageView.Split(weightView);
        var (bias, lbias) = StorageView.Split(biasView);
        var (runningMean, lrunningMean) = runningMeanView;
        var (runningVar, lrunningVar) = runningVarView;
        const string op = "batch_norm2d";
        RequireNormDType(op, x.DType);
        var (n, c, hw) = Nchw(lx);
        var t = x.DType; var pt = ParamType(t);
        bool nhwc = ChannelsLastFor(t);
        using var owned = new Owned();
        var px = Activation(xView, nhwc, owned, op);
        var g = Channel(weight, lweight, c, pt, 1, op); var b = Channel(bias, lbias, c, pt, 0, op);
        var rm = Channel(runningMean, lrunningMean, c, pt, 0, op); var rv = Channel(runningVar, lrunningVar, c, pt, 1, op);
        foreach (var v in new[] { g, b, rm, rv }) owned.Own(new Releaser(v));
        var y = nhwc ? NewNhwc(t, lx.Shape) : New(t, lx.Count);
        var a = new KernelArgs().Add((long)n).Add((long)c).Add(hw).Add(px).Add(rm.Ptr).Add(rv.Ptr);
        AddScalar(a, pt, eps);
        Launch("norm", "bn_relu_infer_" + (nhwc ? "nhwc_" : "") + Sfx(t), lx.Count, a.Add(g.Ptr).Add(b.Ptr).Add(0).Add(y.Ptr));
        return y;
    }

    /// <inheritdoc />
    public (Storage Dx, Storage DWeight, Storage DBias) BatchNorm2dBackward(StorageView dyView, StorageView xView,
        StorageView meanView, StorageView invStdView, StorageView? weightView, bool batchStats)
        => BnBackward(dyView, null, xView, meanView, invStdView, weightView, batchStats, "batch_norm2d backward");

    /// <inheritdoc />
    public (Storage Dx, Storage DWeight, Storage DBias) BatchNorm2dReluBackward(StorageView dy, StorageView y, StorageView x,
        StorageView mean, StorageView invStd, StorageView? weight, bool batchStats)
        => batchStats
            ? BnBackward(dy, y, x, mean, invStd, weight, batchStats, "batch_norm2d_relu backward")
            : BnBackward(new(ReluBackward(dy, y), Layout.Contiguous(dy.Shape)), null, x, mean, invStd, weight, batchStats, "batch_norm2d_relu backward", ownsDy: true);

    // The reduce pass (dgamma, dbeta) and the dx pass; reluY (the fused ReLU's output) masks dy inside both.
    (Storage, Storage, Storage) BnBackward(StorageView dyView, StorageView? reluYView, StorageView xView, StorageView meanView,
        StorageView invStdView, StorageView? weightView, bool batchStats, string op, bool ownsDy = false)
    {
        var (dy, ldy) = dyView;
        var (x, lx) = xView;
        var (mean, lmean) = meanView;
        var (invStd, linvStd) = invStdView;
        var (weight, lweight) = StorageView.Split(weightView);
        using var owned = new Owned();
        try
        {
            RequireNormDType(op, x.DType);
            var (n, c, hw) = Nchw(lx);
            var t = x.DType; var pt = ParamType(t);
            bool nhwc = ChannelsLastFor(t);
            string k = nhwc ? "nhwc_" + Sfx(t) : Sfx(t);
            var px = Activation(xView, nhwc, owned, op);
            var pdy = Activation(dyView, nhwc, owned, op);
            var py = reluYView is { } yv ? Activation(yv, nhwc, owned, op) : px;   // relu = 0: the kernels never read y; x stands in
            int relu = reluYView is null ? 0 : 1;
            var m = Channel(mean, lmean, c, pt, 0, op); var s = Channel(invStd, linvStd, c, pt, 1, op);
            var g = Channel(weight, lweight, c, pt, 1, op);
            foreach (var v in new[] { m, s, g }) owned.Own(new Releaser(v));
            var dw = New(pt, c); var db = New(pt, c);
            Context.Launch("norm", "bn_relu_backward_reduce_" + k, Math.Min(c, 1 << 20), 256, new KernelArgs().Add((long)n).Add((long)c).Add(hw)
                .Add(px).Add(py).Add(pdy).Add(m.Ptr).Add(s.Ptr).Add(relu).Add(dw.Ptr).Add(db.Ptr));
            Storage dx;
            if (batchStats)
            {
                dx = nhwc ? NewNhwc(t, lx.Shape) : New(t, lx.Count);
                Launch("norm", "bn_relu_backward_dx_" + k, lx.Count, new KernelArgs().Add((long)n).Add((long)c).Add(hw)
                    .Add(px).Add(py).Add(pdy).Add(m.Ptr).Add(s.Ptr).Add(g.Ptr).Add(dw.Ptr).Add(db.Ptr).Add(relu).Add(((CudaStorage)dx).Ptr));
            }
            else
            {
                // Constant statistics: dx = dy·γ·invStd, a broadcast multiply over [N, C, HW] (float32 for bf16, rounded once).
                var scale = Binary(BinaryOp.Mul, StorageView.Dense(g, [c]), StorageView.Dense(s, [c]));
                try
                {
                    var shape = new[] { n, c, (int)hw };
                    var dyd = Dense(dyView.Storage, dyView.Layout, op);   // NCHW (after the reduce pass has read it)
                    owned.Own(new Releaser(dyd));
                    var dyv = StorageView.Dense(dyd, shape);
                    var sv = new StorageView(scale, new Layout(shape, [0, 1, 0], 0));
                    dx = t == DType.BFloat16 ? ViaFloat32([dyv, sv], v => Binary(BinaryOp.Mul, v[0], v[1])) : Binary(BinaryOp.Mul, dyv, sv);
                }
                finally { scale.Release(); }
            }
            return (dx, dw, db);
        }
        finally { if (ownsDy) dy.Release(); }
    }
}
