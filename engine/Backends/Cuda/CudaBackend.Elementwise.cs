namespace MtlMoe.Engine.Backends.Cuda;

// Pointwise ops through kernels/pointwise.cu: any layout (strided, broadcast) in one launch, dense output.
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
        if (x.DType != DType.Float32 && Transcendental(op, alpha))
            throw new NotSupportedException($"{op.ToString().ToLowerInvariant()} on cuda is float32 only (got {x.DType.Name()}); use the cpu for {x.DType.Name()}");
        int n = layout.Count;
        var y = New(x.DType, n);
        if (n == 0) return y;
        var s = Strided3.Make("unary", layout.Shape, layout.Strides);
        var args = new KernelArgs().Add((long)n).AddStruct(s).Add((int)op);
        AddScalar(args, x.DType, alpha); AddScalar(args, x.DType, beta);
        Launch("pointwise", "unary_" + Sfx(x.DType), n, args.Add(P(x, layout, "unary")).Add(y.Ptr));
        return y;
    }

    static void AddScalar(KernelArgs args, DType t, double v)
    {
        switch (t)
        {
            case DType.Float32: args.Add((float)v); break;
            case DType.Float64: args.Add(v); break;
            case DType.Int32: args.Add((int)v); break;
            default: args.Add((long)v); break;
        }
    }

    /// <inheritdoc />
    public Storage Binary(BinaryOp op, StorageView aView, StorageView bView)
    {
        var (a, la) = aView;
        var (b, lb) = bView;
        if (a.DType != b.DType) throw new InvalidOperationException($"{op}: dtypes {a.DType.Name()} and {b.DType.Name()} differ");
        if (op == BinaryOp.Pow && a.DType != DType.Float32)
            throw new NotSupportedException($"pow on cuda is float32 only (got {a.DType.Name()})");
        int n = la.Count;
        var y = New(a.DType, n);
        if (n == 0) return y;
        var s = Strided3.Make("binary", la.Shape, la.Strides, lb.Strides);
        Launch("pointwise", "binary_" + Sfx(a.DType), n,
            new KernelArgs().Add((long)n).AddStruct(s).Add((int)op).Add(P(a, la, "binary")).Add(P(b, lb, "binary")).Add(y.Ptr));
        return y;
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
}
