using System.Collections.Concurrent;
using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

// Convolutions through cuDNN (cross-correlation), float32 or bf16 (CUDNN_DATA_BFLOAT16 tensors and filters, float32
// compute, tensor-op math), NCHW or — with CudaBackendOptions.ChannelsLast — NHWC tensors and KRSC filters (the weights
// stay KCRS in memory: each call transposes them, a small copy next to the activations). The algorithm for each
// (pass, shapes, geometry, dtype, format) is searched once with cudnnFind*AlgorithmEx on the real buffers and cached;
// workspaces come from the caching allocator. float32 math is full FP32 (CUDNN_FMA_MATH) unless AllowTf32 — cuDNN's
// default math would use TF32 on Ampere+.
public sealed partial class CudaBackend
{
    const long SearchWorkspaceBytes = 256L << 20;
    readonly ConcurrentDictionary<string, (int Algo, long Workspace)> _convAlgos = new();

    CudnnMathType ConvMath(DType t) => t == DType.BFloat16 || AllowTf32 ? CudnnMathType.TensorOp : CudnnMathType.Fma;

    static CudnnDataType CudnnType(DType t, string op) => t switch
    {
        DType.Float32 => CudnnDataType.Float,
        DType.BFloat16 => CudnnDataType.Bfloat16,
        _ => throw new NotSupportedException($"{op} on cuda supports float32 and bf16 (got {t.Name()})"),
    };

    /// <summary>Descriptors of one convolution problem (x [N, C, H, W], w [O, C/g, kh, kw], y [N, O, Ho, Wo]) in one dtype and memory format.</summary>
    sealed class ConvDescs : IDisposable
    {
        public readonly TensorDescriptor X, Y;
        public readonly FilterDescriptor W;
        public readonly ConvolutionDescriptor Conv;
        public readonly string Key;

        public ConvDescs(int[] xs, int[] ws, Conv2dGeometry g, DType t, CudnnMathType math, bool nhwc)
        {
            int ho = g.OutH(xs[2], ws[2]), wo = g.OutW(xs[3], ws[3]);
            var type = CudnnType(t, "conv2d");
            var format = nhwc ? CudnnTensorFormat.Nhwc : CudnnTensorFormat.Nchw;
            X = new TensorDescriptor(type, xs[0], xs[1], xs[2], xs[3], format);
            W = new FilterDescriptor(type, ws[0], ws[1], ws[2], ws[3], format);
            Y = new TensorDescriptor(type, xs[0], ws[0], ho, wo, format);
            Conv = new ConvolutionDescriptor(g.PadH, g.PadW, g.StrideH, g.StrideW, g.DilationH, g.DilationW, g.Groups, CudnnDataType.Float, math);
            Key = $"{Shapes.Format(xs)}|{Shapes.Format(ws)}|{g}|{math}|{t.Name()}|{format}";
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

    CuDevicePtr ConvFilter(StorageView w, bool nhwc, Owned ops, string op)
    {
        var d = Dense(w.Storage, w.Layout, op);
        ops.Own(new Releaser(d));
        if (!nhwc) return d.Ptr;
        var krsc = FilterLayout(d, w.Shape, toNhwc: true, op);
        ops.Own(new Releaser(krsc));
        return krsc.Ptr;
    }

    void RequireConvOperands(string op, DType a, DType b)
    {
        CudnnType(a, op);
        if (a != b) throw new InvalidOperationException($"{op}: dtypes {a.Name()} and {b.Name()} differ");
    }

    /// <inheritdoc />
    public unsafe Storage Conv2dForward(StorageView xView, StorageView wView, Conv2dGeometry geometry)
    {
        var (x, lx) = xView;
        var (w, lw) = wView;
        RequireConvOperands("conv2d", x.DType, w.DType);
        var t = x.DType;
        bool nhwc = ChannelsLastFor(t);
        var xs = lx.Shape; var wsh = lw.Shape;
        int ho = geometry.OutH(xs[2], wsh[2]), wo = geometry.OutW(xs[3], wsh[3]);
        int[] ys = [xs[0], wsh[0], ho, wo];
        var y = nhwc ? NewNhwc(t, ys) : New(t, Shapes.Count(ys));
        if (y.Length == 0) return y;
        using var d = new ConvDescs(xs, wsh, geometry, t, ConvMath(t), nhwc);
        using var ops = new Owned();
        var px = Activation(xView, nhwc, ops, "conv2d"); var pw = ConvFilter(wView, nhwc, ops, "conv2d");
        var h = Context.Cudnn;
        Context.MakeCurrent();
        var (algo, wsBytes) = _convAlgos.GetOrAdd("fwd|" + d.Key, _ =>
        {
            using var search = Workspace(SearchWorkspaceBytes);
            var perf = new CudnnConvFwdAlgoPerf[8];
            int count;
            fixed (CudnnConvFwdAlgoPerf* pp = perf)
            CuDnn.Check(CuDnn.cudnnFindConvolutionForwardAlgorithmEx(h, d.X.Handle, px, d.W.Handle, pw, d.Conv.Handle, d.Y.Handle, y.Ptr,
                8, out count, pp, search.Ptr, (nuint)SearchWorkspaceBytes));
            return Pick(count, i => (perf[i].Status, (int)perf[i].Algo, (long)perf[i].Memory), "cudnnFindConvolutionForwardAlgorithmEx", d.Key);
        });
        using var ws = Workspace(wsBytes);
        float one = 1, zero = 0;   // cuDNN scaling factors are float for float and bf16 data
        CuDnn.Check(CuDnn.cudnnConvolutionForward(h, &one, d.X.Handle, px, d.W.Handle, pw, d.Conv.Handle, (CudnnConvFwdAlgo)algo,
            ws.Ptr, (nuint)Math.Max(0, wsBytes), &zero, d.Y.Handle, y.Ptr));
        return y;
    }

    /// <inheritdoc />
    public unsafe Storage Conv2dBackwardData(StorageView dyView, StorageView wView, Conv2dGeometry geometry, int[] inputShape)
    {
        var (dy, ldy) = dyView;
        var (w, lw) = wView;
        RequireConvOperands("conv2d backward", dy.DType, w.DType);
        var t = dy.DType;
        bool nhwc = ChannelsLastFor(t);
        if (Shapes.Count(inputShape) == 0) return New(t, 0);
        if (ldy.Count == 0) return NewZeroed(t, Shapes.Count(inputShape));
        var dx = nhwc ? NewNhwc(t, inputShape) : New(t, Shapes.Count(inputShape));
        using var d = new ConvDescs(inputShape, lw.Shape, geometry, t, ConvMath(t), nhwc);
        using var ops = new Owned();
        var pdy = Activation(dyView, nhwc, ops, "conv2d backward"); var pw = ConvFilter(wView, nhwc, ops, "conv2d backward");
        var h = Context.Cudnn;
        Context.MakeCurrent();
        var (algo, wsBytes) = _convAlgos.GetOrAdd("bwd-data|" + d.Key, _ =>
        {
            using var search = Workspace(SearchWorkspaceBytes);
            var perf = new CudnnConvBwdDataAlgoPerf[8];
            int count;
            fixed (CudnnConvBwdDataAlgoPerf* pp = perf)
            CuDnn.Check(CuDnn.cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.W.Handle, pw, d.Y.Handle, pdy, d.Conv.Handle, d.X.Handle, dx.Ptr,
                8, out count, pp, search.Ptr, (nuint)SearchWorkspaceBytes));
            return Pick(count, i => (perf[i].Status, (int)perf[i].Algo, (long)perf[i].Memory), "cudnnFindConvolutionBackwardDataAlgorithmEx", d.Key);
        });
        using var ws = Workspace(wsBytes);
        float one = 1, zero = 0;
        CuDnn.Check(CuDnn.cudnnConvolutionBackwardData(h, &one, d.W.Handle, pw, d.Y.Handle, pdy, d.Conv.Handle, (CudnnConvBwdDataAlgo)algo,
            ws.Ptr, (nuint)Math.Max(0, wsBytes), &zero, d.X.Handle, dx.Ptr));
        return dx;
    }

    /// <inheritdoc />
    public unsafe Storage Conv2dBackwardWeight(StorageView xView, StorageView dyView, Conv2dGeometry geometry, int[] weightShape)
    {
        var (x, lx) = xView;
        var (dy, ldy) = dyView;
        RequireConvOperands("conv2d backward", x.DType, dy.DType);
        var t = x.DType;
        bool nhwc = ChannelsLastFor(t);
        if (ldy.Count == 0 || lx.Count == 0) return NewZeroed(t, Shapes.Count(weightShape));
        var dw = New(t, Shapes.Count(weightShape));   // KRSC under channels-last, transposed to KCRS below
        using var d = new ConvDescs(lx.Shape, weightShape, geometry, t, ConvMath(t), nhwc);
        using var ops = new Owned();
        var px = Activation(xView, nhwc, ops, "conv2d backward"); var pdy = Activation(dyView, nhwc, ops, "conv2d backward");
        var h = Context.Cudnn;
        Context.MakeCurrent();
        var (algo, wsBytes) = _convAlgos.GetOrAdd("bwd-filter|" + d.Key, _ =>
        {
            using var search = Workspace(SearchWorkspaceBytes);
            var perf = new CudnnConvBwdFilterAlgoPerf[8];
            int count;
            fixed (CudnnConvBwdFilterAlgoPerf* pp = perf)
            CuDnn.Check(CuDnn.cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.X.Handle, px, d.Y.Handle, pdy, d.Conv.Handle, d.W.Handle, dw.Ptr,
                8, out count, pp, search.Ptr, (nuint)SearchWorkspaceBytes));
            return Pick(count, i => (perf[i].Status, (int)perf[i].Algo, (long)perf[i].Memory), "cudnnFindConvolutionBackwardFilterAlgorithmEx", d.Key);
        });
        using (var ws = Workspace(wsBytes))
        {
            float one = 1, zero = 0;
            CuDnn.Check(CuDnn.cudnnConvolutionBackwardFilter(h, &one, d.X.Handle, px, d.Y.Handle, pdy, d.Conv.Handle, (CudnnConvBwdFilterAlgo)algo,
                ws.Ptr, (nuint)Math.Max(0, wsBytes), &zero, d.W.Handle, dw.Ptr));
        }
        if (!nhwc) return dw;
        try { return FilterLayout(dw, weightShape, toNhwc: false, "conv2d backward"); }   // the weights' gradient in the weights' KCRS order
        finally { dw.Release(); }
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
