using System.Collections.Concurrent;
using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

// Convolutions through cuDNN (NCHW float32, cross-correlation). The algorithm for each (pass, shapes, geometry)
// is searched once with cudnnFind*AlgorithmEx on the real buffers and cached; workspaces come from the caching
// allocator. Math is full FP32 (CUDNN_FMA_MATH) unless AllowTf32 — cuDNN's default math would use TF32 on Ampere+.
public sealed partial class CudaBackend
{
    const long SearchWorkspaceBytes = 256L << 20;
    readonly ConcurrentDictionary<string, (int Algo, long Workspace)> _convAlgos = new();

    CudnnMathType ConvMath => AllowTf32 ? CudnnMathType.TensorOp : CudnnMathType.Fma;

    /// <summary>Descriptors of one convolution problem (x [N, C, H, W], w [O, C/g, kh, kw], y [N, O, Ho, Wo]).</summary>
    sealed class ConvDescs : IDisposable
    {
        public readonly TensorDescriptor X, Y;
        public readonly FilterDescriptor W;
        public readonly ConvolutionDescriptor Conv;
        public readonly string Key;

        public ConvDescs(int[] xs, int[] ws, Conv2dGeometry g, CudnnMathType math)
        {
            int ho = g.OutH(xs[2], ws[2]), wo = g.OutW(xs[3], ws[3]);
            X = new TensorDescriptor(CudnnDataType.Float, xs[0], xs[1], xs[2], xs[3]);
            W = new FilterDescriptor(CudnnDataType.Float, ws[0], ws[1], ws[2], ws[3]);
            Y = new TensorDescriptor(CudnnDataType.Float, xs[0], ws[0], ho, wo);
            Conv = new ConvolutionDescriptor(g.PadH, g.PadW, g.StrideH, g.StrideW, g.DilationH, g.DilationW, g.Groups, CudnnDataType.Float, math);
            Key = $"{Shapes.Format(xs)}|{Shapes.Format(ws)}|{g}|{math}";
        }

        public void Dispose() { X.Dispose(); Y.Dispose(); W.Dispose(); Conv.Dispose(); }
    }

    /// <summary>Scratch device memory for cuDNN, from the allocator (null pointer for 0 bytes); released on Dispose.</summary>
    Scratch Workspace(long bytes) => new(bytes <= 0 ? null : New(DType.Float32, (int)((bytes + 3) / 4)));

    readonly struct Scratch(CudaStorage? s) : IDisposable
    {
        public CuDevicePtr Ptr => s?.Ptr ?? default;
        public void Dispose() => s?.Release();
    }

    /// <inheritdoc />
    public unsafe Storage Conv2dForward(StorageView xView, StorageView wView, Conv2dGeometry geometry)
    {
        var (x, lx) = xView;
        var (w, lw) = wView;
        RequireF32("conv2d", x.DType);
        var xs = lx.Shape; var wsh = lw.Shape;
        int ho = geometry.OutH(xs[2], wsh[2]), wo = geometry.OutW(xs[3], wsh[3]);
        var y = New(DType.Float32, xs[0] * wsh[0] * ho * wo);
        if (y.Length == 0) return y;
        using var d = new ConvDescs(xs, wsh, geometry, ConvMath);
        var xd = Dense(x, lx, "conv2d"); var wd = Dense(w, lw, "conv2d");
        try
        {
            var h = Context.Cudnn;
            Context.MakeCurrent();
            var (algo, wsBytes) = _convAlgos.GetOrAdd("fwd|" + d.Key, _ =>
            {
                using var search = Workspace(SearchWorkspaceBytes);
                var perf = new CudnnConvFwdAlgoPerf[8];
                int count;
                fixed (CudnnConvFwdAlgoPerf* pp = perf)
                CuDnn.Check(CuDnn.cudnnFindConvolutionForwardAlgorithmEx(h, d.X.Handle, xd.Ptr, d.W.Handle, wd.Ptr, d.Conv.Handle, d.Y.Handle, y.Ptr,
                    8, out count, pp, search.Ptr, (nuint)SearchWorkspaceBytes));
                return Pick(count, i => (perf[i].Status, (int)perf[i].Algo, (long)perf[i].Memory), "cudnnFindConvolutionForwardAlgorithmEx", d.Key);
            });
            using var ws = Workspace(wsBytes);
            float one = 1, zero = 0;
            CuDnn.Check(CuDnn.cudnnConvolutionForward(h, &one, d.X.Handle, xd.Ptr, d.W.Handle, wd.Ptr, d.Conv.Handle, (CudnnConvFwdAlgo)algo,
                ws.Ptr, (nuint)Math.Max(0, wsBytes), &zero, d.Y.Handle, y.Ptr));
            return y;
        }
        finally { xd.Release(); wd.Release(); }
    }

    /// <inheritdoc />
    public unsafe Storage Conv2dBackwardData(StorageView dyView, StorageView wView, Conv2dGeometry geometry, int[] inputShape)
    {
        var (dy, ldy) = dyView;
        var (w, lw) = wView;
        RequireF32("conv2d backward", dy.DType);
        var dx = New(DType.Float32, Shapes.Count(inputShape));
        if (dx.Length == 0) return dx;
        if (ldy.Count == 0) { dx.Release(); return NewZeroed(DType.Float32, Shapes.Count(inputShape)); }
        using var d = new ConvDescs(inputShape, lw.Shape, geometry, ConvMath);
        var dyd = Dense(dy, ldy, "conv2d backward"); var wd = Dense(w, lw, "conv2d backward");
        try
        {
            var h = Context.Cudnn;
            Context.MakeCurrent();
            var (algo, wsBytes) = _convAlgos.GetOrAdd("bwd-data|" + d.Key, _ =>
            {
                using var search = Workspace(SearchWorkspaceBytes);
                var perf = new CudnnConvBwdDataAlgoPerf[8];
                int count;
                fixed (CudnnConvBwdDataAlgoPerf* pp = perf)
                CuDnn.Check(CuDnn.cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.W.Handle, wd.Ptr, d.Y.Handle, dyd.Ptr, d.Conv.Handle, d.X.Handle, dx.Ptr,
                    8, out count, pp, search.Ptr, (nuint)SearchWorkspaceBytes));
                return Pick(count, i => (perf[i].Status, (int)perf[i].Algo, (long)perf[i].Memory), "cudnnFindConvolutionBackwardDataAlgorithmEx", d.Key);
            });
            using var ws = Workspace(wsBytes);
            float one = 1, zero = 0;
            CuDnn.Check(CuDnn.cudnnConvolutionBackwardData(h, &one, d.W.Handle, wd.Ptr, d.Y.Handle, dyd.Ptr, d.Conv.Handle, (CudnnConvBwdDataAlgo)algo,
                ws.Ptr, (nuint)Math.Max(0, wsBytes), &zero, d.X.Handle, dx.Ptr));
            return dx;
        }
        finally { dyd.Release(); wd.Release(); }
    }

    /// <inheritdoc />
    public unsafe Storage Conv2dBackwardWeight(StorageView xView, StorageView dyView, Conv2dGeometry geometry, int[] weightShape)
    {
        var (x, lx) = xView;
        var (dy, ldy) = dyView;
        RequireF32("conv2d backward", x.DType);
        if (ldy.Count == 0 || lx.Count == 0) return NewZeroed(DType.Float32, Shapes.Count(weightShape));
        var dw = New(DType.Float32, Shapes.Count(weightShape));
        using var d = new ConvDescs(lx.Shape, weightShape, geometry, ConvMath);
        var xd = Dense(x, lx, "conv2d backward"); var dyd = Dense(dy, ldy, "conv2d backward");
        try
        {
            var h = Context.Cudnn;
            Context.MakeCurrent();
            var (algo, wsBytes) = _convAlgos.GetOrAdd("bwd-filter|" + d.Key, _ =>
            {
                using var search = Workspace(SearchWorkspaceBytes);
                var perf = new CudnnConvBwdFilterAlgoPerf[8];
                int count;
                fixed (CudnnConvBwdFilterAlgoPerf* pp = perf)
                CuDnn.Check(CuDnn.cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.X.Handle, xd.Ptr, d.Y.Handle, dyd.Ptr, d.Conv.Handle, d.W.Handle, dw.Ptr,
                    8, out count, pp, search.Ptr, (nuint)SearchWorkspaceBytes));
                return Pick(count, i => (perf[i].Status, (int)perf[i].Algo, (long)perf[i].Memory), "cudnnFindConvolutionBackwardFilterAlgorithmEx", d.Key);
            });
            using var ws = Workspace(wsBytes);
            float one = 1, zero = 0;
            CuDnn.Check(CuDnn.cudnnConvolutionBackwardFilter(h, &one, d.X.Handle, xd.Ptr, d.Y.Handle, dyd.Ptr, d.Conv.Handle, (CudnnConvBwdFilterAlgo)algo,
                ws.Ptr, (nuint)Math.Max(0, wsBytes), &zero, d.W.Handle, dw.Ptr));
            return dw;
        }
        finally { xd.Release(); dyd.Release(); }
    }

    /// <summary>The fastest successful algorithm of a Find result (cuDNN sorts by time).</summary>
    static (int, long) Pick(int count, Func<int, (CudnnStatus Status, int Algo, long Memory)> at, string fn, string key)
    {
        for (int i = 0; i < count; i++)
        {
            var (st, algo, mem) = at(i);
            if (st == CudnnStatus.Success && mem <= SearchWorkspaceBytes) return (algo, mem);
        }
        throw new CudaException("cudnn", fn, "CUDNN_STATUS_NOT_SUPPORTED", (int)CudnnStatus.NotSupported, $"no usable algorithm for {key}", "conv2d");
    }
}
