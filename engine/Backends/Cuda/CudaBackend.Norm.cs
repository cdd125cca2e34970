namespace MtlMoe.Engine.Backends.Cuda;

// Batch norm through kernels/norm.cu rather than cuDNN: the kernels keep PyTorch's semantics exactly (unbiased
// running variance, eval backward with constant statistics, null weight/bias) and reduce in a fixed order, so
// training on the GPU is reproducible bit for bit. x is viewed as dense [N, C, HW]; channel vectors are [C].
public sealed partial class CudaBackend
{
    /// <summary>Dense [C] copy (or reference) of an optional channel vector; null becomes <paramref name="fill"/>.</summary>
    CudaStorage Channel(Storage? s, Layout l, int c, DType t, double fill, string op)
    {
        if (s is not null) return Dense(s, l, op);
        var r = New(t, c);
        Fill(StorageView.Dense(r, [c]), fill);
        return r;
    }

    static (int N, int C, long HW) Nchw(Layout lx) => (lx.Shape[0], lx.Shape[1], lx.Count / Math.Max(1, (long)lx.Shape[0] * lx.Shape[1]));

    void RequireDenseInPlace(string op, Layout l)
    {
        if (!l.IsContiguous) throw new NotSupportedException($"{op} on cuda: running statistics must be contiguous ({l})");
    }

    /// <inheritdoc />
    public (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dTrainForward(StorageView xView,
        StorageView? weightView, StorageView? biasView,
        StorageView runningMeanView, StorageView runningVarView, double momentum, double eps)
    {
        var (x, lx) = xView;
        var (weight, lweight) = StorageView.Split(weightView);
        var (bias, lbias) = StorageView.Split(biasView);
        var (runningMean, lrunningMean) = runningMeanView;
        var (runningVar, lrunningVar) = runningVarView;
        const string op = "batch_norm2d";
        RequireFloat(op, x.DType);
        RequireDenseInPlace(op, lrunningMean); RequireDenseInPlace(op, lrunningVar);
        var (n, c, hw) = Nchw(lx);
        var t = x.DType;
        var xd = Dense(x, lx, op);
        var g = Channel(weight, lweight, c, t, 1, op); var b = Channel(bias, lbias, c, t, 0, op);
        var mean = New(t, c); var invStd = New(t, c); var y = New(t, lx.Count);
        try
        {
            var a = new KernelArgs().Add((long)n).Add((long)c).Add(hw).Add(P(xd));
            AddScalar(a, t, eps); AddScalar(a, t, momentum);
            Context.Launch("norm", "bn_stats_" + Sfx(t), Math.Min(c, 1 << 20), 256,
                a.Add(mean.Ptr).Add(invStd.Ptr).Add(P(runningMean, lrunningMean, op)).Add(P(runningVar, lrunningVar, op)));
            Launch("norm", "bn_relu_forward_" + Sfx(t), lx.Count, new KernelArgs().Add((long)n).Add((long)c).Add(hw).Add(P(xd))
                .Add(mean.Ptr).Add(invStd.Ptr).Add(g.Ptr).Add(b.Ptr).Add(0).Add(y.Ptr));
        }
        finally { xd.Release(); g.Release(); b.Release(); }
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
        RequireFloat(op, x.DType);
        var (n, c, hw) = Nchw(lx);
        var t = x.DType;
        var xd = Dense(x, lx, op);
        var g = Channel(weight, lweight, c, t, 1, op); var b = Channel(bias, lbias, c, t, 0, op);
        var rm = Dense(runningMean, lrunningMean, op); var rv = Dense(runningVar, lrunningVar, op);
        var y = New(t, lx.Count);
        try
        {
            var a = new KernelArgs().Add((long)n).Add((long)c).Add(hw).Add(P(xd)).Add(rm.Ptr).Add(rv.Ptr);
            AddScalar(a, t, eps);
            Launch("norm", "bn_relu_infer_" + Sfx(t), lx.Count, a.Add(g.Ptr).Add(b.Ptr).Add(0).Add(y.Ptr));
        }
        finally { xd.Release(); g.Release(); b.Release(); rm.Release(); rv.Release(); }
        return y;
    }

    /// <inheritdoc />
    public (Storage Dx, Storage DWeight, Storage DBias) BatchNorm2dBackward(StorageView dyView, StorageView xView,
        StorageView meanView, StorageView invStdView, StorageView? weightView, bool batchStats)
    {
        var (dy, ldy) = dyView;
        var (x, lx) = xView;
        var (mean, lmean) = meanView;
        var (invStd, linvStd) = invStdView;
        var (weight, lweight) = StorageView.Split(weightView);
        const string op = "batch_norm2d backward";
        RequireFloat(op, x.DType);
        var (n, c, hw) = Nchw(lx);
        var t = x.DType;
        var xd = Dense(x, lx, op); var dyd = Dense(dy, ldy, op);
        var m = Dense(mean, lmean, op); var s = Dense(invStd, linvStd, op);
        var g = Channel(weight, lweight, c, t, 1, op);
        var dw = New(t, c); var db = New(t, c);
        try
        {
            // relu = 0: the y argument is never read; x stands in for it.
            Context.Launch("norm", "bn_relu_backward_reduce_" + Sfx(t), Math.Min(c, 1 << 20), 256, new KernelArgs().Add((long)n).Add((long)c).Add(hw)
                .Add(P(xd)).Add(P(xd)).Add(P(dyd)).Add(m.Ptr).Add(s.Ptr).Add(0).Add(dw.Ptr).Add(db.Ptr));
            Storage dx;
            if (batchStats)
            {
                dx = New(t, lx.Count);
                Launch("norm", "bn_relu_backward_dx_" + Sfx(t), lx.Count, new KernelArgs().Add((long)n).Add((long)c).Add(hw)
                    .Add(P(xd)).Add(P(xd)).Add(P(dyd)).Add(m.Ptr).Add(s.Ptr).Add(g.Ptr).Add(dw.Ptr).Add(db.Ptr).Add(0).Add(P(dx)));
            }
            else
            {
                // Constant statistics: dx = dy·γ·invStd, a broadcast multiply over [N, C, HW].
                var scale = Binary(BinaryOp.Mul, StorageView.Dense(g, [c]), StorageView.Dense(s, [c]));
                try
                {
                    var shape = new[] { n, c, (int)hw };
                    dx = Binary(BinaryOp.Mul, StorageView.Dense(dyd, shape), new(scale, new Layout(shape, [0, 1, 0], 0)));
                }
                finally { scale.Release(); }
            }
            return (dx, dw, db);
        }
        finally { xd.Release(); dyd.Release(); m.Release(); s.Release(); g.Release(); }
    }
}
