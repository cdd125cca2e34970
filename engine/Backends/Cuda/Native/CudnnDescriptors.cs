namespace MtlMoe.Engine.Backends.Cuda.Native;

// IDisposable owners of cuDNN descriptors: create in the constructor, set once, destroy on Dispose.

/// <summary>An owned <c>cudnnTensorDescriptor_t</c>.</summary>
public sealed unsafe class TensorDescriptor : IDisposable
{
    /// <summary>The native descriptor.</summary>
    public CudnnTensorDesc Handle { get; private set; }

    /// <summary>A packed 4-d descriptor of logical dims n, c, h, w stored in <paramref name="format"/> order (NCHW, or NHWC: channels last).</summary>
    public TensorDescriptor(CudnnDataType type, int n, int c, int h, int w, CudnnTensorFormat format = CudnnTensorFormat.Nchw)
    {
        CuDnn.Check(CuDnn.cudnnCreateTensorDescriptor(out var d));
        Handle = d;
        CuDnn.Check(CuDnn.cudnnSetTensor4dDescriptor(d, format, type, n, c, h, w));
    }

    /// <summary>An N-d descriptor with explicit element strides (cuDNN needs at least 3 dims; pad with 1s).</summary>
    public TensorDescriptor(CudnnDataType type, ReadOnlySpan<int> dims, ReadOnlySpan<int> strides)
    {
        if (dims.Length != strides.Length) throw new ArgumentException($"cudnn tensor descriptor: {dims.Length} dims but {strides.Length} strides");
        CuDnn.Check(CuDnn.cudnnCreateTensorDescriptor(out var d));
        Handle = d;
        fixed (int* pd = dims) fixed (int* ps = strides)
            CuDnn.Check(CuDnn.cudnnSetTensorNdDescriptor(d, type, dims.Length, pd, ps));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Handle.Handle == 0) return;
        CuDnn.Check(CuDnn.cudnnDestroyTensorDescriptor(Handle));
        Handle = default;
    }
}

/// <summary>An owned <c>cudnnFilterDescriptor_t</c> (weights [K, C/groups, R, S]).</summary>
public sealed class FilterDescriptor : IDisposable
{
    /// <summary>The native descriptor.</summary>
    public CudnnFilterDesc Handle { get; private set; }

    /// <summary>A filter of logical dims k, c, r, s stored KCRS (<paramref name="format"/> NCHW) or KRSC (NHWC).</summary>
    public FilterDescriptor(CudnnDataType type, int k, int c, int r, int s, CudnnTensorFormat format = CudnnTensorFormat.Nchw)
    {
        CuDnn.Check(CuDnn.cudnnCreateFilterDescriptor(out var d));
        Handle = d;
        CuDnn.Check(CuDnn.cudnnSetFilter4dDescriptor(d, type, format, k, c, r, s));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Handle.Handle == 0) return;
        CuDnn.Check(CuDnn.cudnnDestroyFilterDescriptor(Handle));
        Handle = default;
    }
}

/// <summary>An owned <c>cudnnConvolutionDescriptor_t</c> (cross-correlation, as deep-learning frameworks use).</summary>
public sealed class ConvolutionDescriptor : IDisposable
{
    /// <summary>The native descriptor.</summary>
    public CudnnConvolutionDesc Handle { get; private set; }

    /// <summary>A 2-d convolution with padding, stride, dilation, groups and a math type (TensorOp allows TF32).</summary>
    public ConvolutionDescriptor(int padH, int padW, int strideH, int strideW, int dilationH = 1, int dilationW = 1,
        int groups = 1, CudnnDataType computeType = CudnnDataType.Float, CudnnMathType math = CudnnMathType.Default)
    {
        CuDnn.Check(CuDnn.cudnnCreateConvolutionDescriptor(out var d));
        Handle = d;
        CuDnn.Check(CuDnn.cudnnSetConvolution2dDescriptor(d, padH, padW, strideH, strideW, dilationH, dilationW, CudnnConvolutionMode.CrossCorrelation, computeType));
        if (groups != 1) CuDnn.Check(CuDnn.cudnnSetConvolutionGroupCount(d, groups));
        CuDnn.Check(CuDnn.cudnnSetConvolutionMathType(d, math));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Handle.Handle == 0) return;
        CuDnn.Check(CuDnn.cudnnDestroyConvolutionDescriptor(Handle));
        Handle = default;
    }
}

/// <summary>An owned <c>cudnnPoolingDescriptor_t</c>.</summary>
public sealed class PoolingDescriptor : IDisposable
{
    /// <summary>The native descriptor.</summary>
    public CudnnPoolingDesc Handle { get; private set; }

    /// <summary>A 2-d pooling window.</summary>
    public PoolingDescriptor(CudnnPoolingMode mode, int windowH, int windowW, int padH, int padW, int strideH, int strideW,
        CudnnNanPropagation nan = CudnnNanPropagation.Propagate)
    {
        CuDnn.Check(CuDnn.cudnnCreatePoolingDescriptor(out var d));
        Handle = d;
        CuDnn.Check(CuDnn.cudnnSetPooling2dDescriptor(d, mode, nan, windowH, windowW, padH, padW, strideH, strideW));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Handle.Handle == 0) return;
        CuDnn.Check(CuDnn.cudnnDestroyPoolingDescriptor(Handle));
        Handle = default;
    }
}

/// <summary>An owned <c>cudnnActivationDescriptor_t</c>.</summary>
public sealed class ActivationDescriptor : IDisposable
{
    /// <summary>The native descriptor.</summary>
    public CudnnActivationDesc Handle { get; private set; }

    /// <summary>An activation; <paramref name="coef"/> is the clip value (ClippedRelu) or alpha (Elu).</summary>
    public ActivationDescriptor(CudnnActivationMode mode, double coef = 0, CudnnNanPropagation nan = CudnnNanPropagation.Propagate)
    {
        CuDnn.Check(CuDnn.cudnnCreateActivationDescriptor(out var d));
        Handle = d;
        CuDnn.Check(CuDnn.cudnnSetActivationDescriptor(d, mode, nan, coef));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Handle.Handle == 0) return;
        CuDnn.Check(CuDnn.cudnnDestroyActivationDescriptor(Handle));
        Handle = default;
    }
}
