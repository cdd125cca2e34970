namespace MtlMoe.Engine.Backends.Cuda;

// Pooling through kernels/pool.cu (not cuDNN: the seam's max-pool backward has only dy and the saved flat
// indices, which cuDNN's pooling backward cannot use, and owner-computes backward passes are deterministic).
// bf16 takes the _bf16 kernels (windows compared and summed in float32, each output rounded once), except the
// max-pool backward: its per-plane kernel adds in the output buffer, so bf16 runs it in float32 and rounds once.
public sealed partial class CudaBackend
{
    static void RequirePoolDType(string op, DType t) => RequireDType(op, t, DType.Float32, DType.Float64, DType.BFloat16);

    KernelArgs PoolArgs(int[] xs, int ho, int wo, Pool2dGeometry g) => new KernelArgs().Add((long)xs[0] * xs[1])
        .Add(xs[2]).Add(xs[3]).Add(ho).Add(wo).Add(g.KernelH).Add(g.KernelW).Add(g.StrideH).Add(g.StrideW).Add(g.PadH).Add(g.PadW);

    /// <inheritdoc />
    public (Storage Values, Storage Indices) MaxPool2dForward(StorageView xView, Pool2dGeometry geometry)
    {
        var (x, lx) = xView;
        RequirePoolDType("max_pool2d", x.DType);
        var xs = lx.Shape;
        int ho = geometry.OutH(xs[2]), wo = geometry.OutW(xs[3]);
        int n = xs[0] * xs[1] * ho * wo;
        var y = New(x.DType, n); var idx = New(DType.Int64, n);
        var xd = Dense(x, lx, "max_pool2d");
        try { Launch("pool", "maxpool2d_" + Sfx(x.DType), n, PoolArgs(xs, ho, wo, geometry).Add(P(xd)).Add(y.Ptr).Add(idx.Ptr)); }
        finally { xd.Release(); }
        return (y, idx);
    }

    /// <inheritdoc />
    public Storage MaxPool2dBackward(StorageView dyView, StorageView indicesView, int[] inputShape)
    {
        var (dy, ldy) = dyView;
        var (indices, lindices) = indicesView;
        RequirePoolDType("max_pool2d backward", dy.DType);
        if (dy.DType == DType.BFloat16) return ViaFloat32([dyView], v => MaxPool2dBackward(v[0], indicesView, inputShape));
        int ho = ldy.Shape[2], wo = ldy.Shape[3];
        var dx = New(dy.DType, Shapes.Count(inputShape));
        var dyd = Dense(dy, ldy, "max_pool2d backward"); var id = Dense(indices, lindices, "max_pool2d backward");
        try
        {
            long planes = (long)inputShape[0] * inputShape[1];
            Launch("pool", "maxpool2d_backward_" + Sfx(dy.DType), planes, new KernelArgs().Add(planes).Add(inputShape[2]).Add(inputShape[3])
                .Add(ho).Add(wo).Add(P(dyd)).Add(P(id)).Add(dx.Ptr), block: 128);
        }
        finally { dyd.Release(); id.Release(); }
        return dx;
    }

    /// <inheritdoc />
    public Storage AvgPool2dForward(StorageView xView, Pool2dGeometry geometry)
    {
        var (x, lx) = xView;
        RequirePoolDType("avg_pool2d", x.DType);
        var xs = lx.Shape;
        int ho = geometry.OutH(xs[2]), wo = geometry.OutW(xs[3]);
        var y = New(x.DType, xs[0] * xs[1] * ho * wo);
        var xd = Dense(x, lx, "avg_pool2d");
        try { Launch("pool", "avgpool2d_" + Sfx(x.DType), y.Length, PoolArgs(xs, ho, wo, geometry).Add(P(xd)).Add(y.Ptr)); }
        finally { xd.Release(); }
        return y;
    }

    /// <inheritdoc />
    public Storage AvgPool2dBackward(StorageView dyView, Pool2dGeometry geometry, int[] inputShape)
    {
        var (dy, ldy) = dyView;
        RequirePoolDType("avg_pool2d backward", dy.DType);
        var dx = New(dy.DType, Shapes.Count(inputShape));
        var dyd = Dense(dy, ldy, "avg_pool2d backward");
        try { Launch("pool", "avgpool2d_backward_" + Sfx(dy.DType), dx.Length, PoolArgs(inputShape, ldy.Shape[2], ldy.Shape[3], geometry).Add(P(dyd)).Add(dx.Ptr)); }
        finally { dyd.Release(); }
        return dx;
    }

    /// <inheritdoc />
    public Storage AdaptiveAvgPool2dForward(StorageView xView, int outH, int outW)
    {
        var (x, lx) = xView;
        RequirePoolDType("adaptive_avg_pool2d", x.DType);
        var xs = lx.Shape;
        var y = New(x.DType, xs[0] * xs[1] * outH * outW);
        var xd = Dense(x, lx, "adaptive_avg_pool2d");
        try
        {
            Launch("pool", "adaptive_avgpool2d_" + Sfx(x.DType), y.Length,
                new KernelArgs().Add((long)xs[0] * xs[1]).Add(xs[2]).Add(xs[3]).Add(outH).Add(outW).Add(P(xd)).Add(y.Ptr));
        }
        finally { xd.Release(); }
        return y;
    }

    /// <inheritdoc />
    public Storage AdaptiveAvgPool2dBackward(StorageView dyView, int[] inputShape)
    {
        var (dy, ldy) = dyView;
        RequirePoolDType("adaptive_avg_pool2d backward", dy.DType);
        var dx = New(dy.DType, Shapes.Count(inputShape));
        var dyd = Dense(dy, ldy, "adaptive_avg_pool2d backward");
        try
        {
            Launch("pool", "adaptive_avgpool2d_backward_" + Sfx(dy.DType), dx.Length,
                new KernelArgs().Add((long)inputShape[0] * inputShape[1]).Add(inputShape[2]).Add(inputShape[3])
                    .Add(ldy.Shape[2]).Add(ldy.Shape[3]).Add(P(dyd)).Add(dx.Ptr));
        }
        finally { dyd.Release(); }
        return dx;
    }
}
