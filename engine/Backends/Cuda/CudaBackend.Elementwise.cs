namespace MtlMoe.Engine.Backends.Cuda;

// Pointwise ops through kernels/pointwise.cu: any layout (strided, broadcast) in one launch, dense output. bf16 runs
// the same kernels (unary_bf16, …): float32 compute, one rounding on store.
public sealed partial class CudaBackend
{
    // Ops whose f32 kernels use the approximate exp/log units; double precision would need libdevice, which the
    // SDK-free build has not got, so float64 refuses them rather than silently computing in float.
    static bool Transcendental(UnaryOp op, double alpha) => op is UnaryOp.Exp or UnaryOp.Log or UnaryOp.Sigmoid or UnaryOp.Tanh
        or UnaryOp.Softplus or UnaryOp.Erf or UnaryOp.NormCdf || (op == UnaryOp.PowScalar && alpha != 1 && alpha != 2);

    /// <inheritdoc />
    public Storage Unary(UnaryOp op, StorageView xView, double alpha = 0, double beta = 0)
    {
        var (x, layout) = xView;
        if (x.DType is not (DType.Float32 or DType.BFloat16) && Transcendental(op, alpha))
            throw new NotSupportedException($"{op.ToString().ToLowerInvariant()} on cuda is float32 and bf16 only (got {x.DType.Name()}); use the cpu for {x.DType.Name()}");
        var t = x.DType;
        KernelArgs Args(long n, Strided3 s)
        {
            var a = new KernelArgs().Add(n).AddStruct(s).Add((int)op);
            AddScalar(a, t, alpha); AddScalar(a, t, beta);
            return a;
        }
        if (PointwiseNhwc(xView))
            return RunPointwiseNhwc([xView], t, "unary", (n, s, p, y) => Launch("pointwise", "unary_" + Sfx(t), n, Args(n, s).Add(p[0]).Add(y)));
        int count = layout.Count;
        var r = New(t, count);
        if (count == 0) return r;
        Launch("pointwise", "unary_" + Sfx(t), count, Args(count, Strided3.Make("unary", layout.Shape, layout.Strides)).Add(P(x, layout, "unary")).Add(r.Ptr));
        return r;
    }

    static void AddScalar(KernelArgs args, DType t, double v)
    {
        switch (t)
        {
            case DType.Float32 or DType.BFloat16: args.Add((float)v); break;   // bf16 kernels take float scalars (acc_t)
            case DType.Float64: args.Add(v); break;
            case DType.Int32: args.Add((int)v); break;
            case DType.Int64: args.Add((long)v); break;
            default: throw new NotSupportedException($"cuda: no scalar argument of dtype {t.Name()}");
        }
    }

    /// <inheritdoc />
    public Storage Binary(BinaryOp op, StorageView aView, StorageView bView)
    {
        var (a, la) = aView;
        var (b, lb) = bView;
        if (a.DType != b.DType) throw new InvalidOperationException($"{op}: dtypes {a.DType.Name()} and {b.DType.Name()} differ");
        if (op == BinaryOp.Pow && a.DType is not (DType.Float32 or DType.BFloat16))
            throw new NotSupportedException($"pow on cuda is float32 and bf16 only (got {a.DType.Name()})");
        var t = a.DType;
        if (PointwiseNhwc(aView, bView))
            return RunPointwiseNhwc([aView, bView], t, "binary", (n, s, p, y) =>
                Launch("pointwise", "binary_" + Sfx(t), n, new KernelArgs().Add(n).AddStruct(s).Add((int)op).Add(p[0]).Add(p[1]).Add(y)));
        int count = la.Count;
        var r = New(t, count);
        if (count == 0) return r;
        var st = Strided3.Make("binary", la.Shape, la.Strides, lb.Strides);
        Launch("pointwise", "binary_" + Sfx(t), count,
            new KernelArgs().Add((long)count).AddStruct(st).Add((int)op).Add(P(a, la, "binary")).Add(P(b, lb, "binary")).Add(r.Ptr));
        return r;
    }

    /// <inheritdoc />
    public Storage Where(StorageView condView, StorageView aView, StorageView bView)
    {
        var (cond, lc) = condView;
        var (a, la) = aView;
        var (b, lb) = bView;
        int n = la.Count;
        var y = New(a.DType, n);
        if (n == 0) return y;
        // The kernel reads cond in the data's dtype; another dtype is cast first (non-zero stays non-zero for
        // integers and floats alike, except float fractions cast to int — so cast toward the float side).
        Storage c = cond; Layout lcc = lc; bool owned = false;
        if (cond.DType != a.DType)
        {
            c = Unary(UnaryOp.Abs, condView);          // |c| > 0 ⇔ c ≠ 0, dense
            var mask = Unary(UnaryOp.GtScalar, StorageView.Dense(c, lc.Shape), 0);
            c.Release();
            c = Cast(StorageView.Dense(mask, lc.Shape), a.DType);
            mask.Release();
            lcc = Layout.Contiguous(lc.Shape); owned = true;
        }
        try
        {
            var s = Strided3.Make("where", la.Shape, lcc.Strides, la.Strides, lb.Strides);
            Launch("pointwise", "where_" + Sfx(a.DType), n, new KernelArgs().Add((long)n).AddStruct(s)
                .Add(P(c, lcc, "where")).Add(P(a, la, "where")).Add(P(b, lb, "where")).Add(y.Ptr));
        }
        finally { if (owned) c.Release(); }
        return y;
    }

    /// <inheritdoc />
    public Storage ReluBackward(StorageView dyView, StorageView yView)
    {
        var (dy, ldy) = dyView;
        var (y, ly) = yView;
        // One pass (relu_backward_<f32|bf16>: dx = y > 0 ? dy : 0) for dense operands; anything else composes.
        if (dy.DType == y.DType && PointwiseNhwc(dyView, yView))
            return RunPointwiseNhwc([yView, dyView], dy.DType, "relu_backward", (n, _, p, dx) =>
                Launch("pointwise", "relu_backward_" + Sfx(dy.DType), n, new KernelArgs().Add(n).Add(p[0]).Add(p[1]).Add(dx)));
        if (dy.DType != y.DType || dy.DType is not (DType.Float32 or DType.BFloat16) || !ldy.IsContiguous || !ly.IsContiguous)
            return ((IBackend)this).ReluBackwardComposed(dyView, yView);
        int n = ly.Count;
        var dx = New(dy.DType, n);
        if (n > 0) Launch("pointwise", "relu_backward_" + Sfx(dy.DType), n, new KernelArgs().Add((long)n).Add(P(y, ly, "relu_backward")).Add(P(dy, ldy, "relu_backward")).Add(dx.Ptr));
        return dx;
    }
}
