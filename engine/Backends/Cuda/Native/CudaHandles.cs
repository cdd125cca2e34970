namespace MtlMoe.Engine.Backends.Cuda.Native;

// Typed handles: each wraps the C handle value so a stream can't be passed where a module is expected.
// All are blittable single-field structs, passed by value exactly like the C pointer/integer they stand for.

/// <summary>A CUDA device ordinal (<c>CUdevice</c>, an int).</summary>
public readonly record struct CuDevice(int Ordinal);

/// <summary>A driver context (<c>CUcontext</c>).</summary>
public readonly record struct CuContext(nint Handle) { /// <summary>True for the null handle.</summary>
    public bool IsNull => Handle == 0; }

/// <summary>A stream (<c>CUstream</c> / <c>cudaStream_t</c>); the null handle is the legacy default stream.</summary>
public readonly record struct CuStream(nint Handle) { /// <summary>The legacy default stream.</summary>
    public static CuStream Default => default; }

/// <summary>An event (<c>CUevent</c>).</summary>
public readonly record struct CuEvent(nint Handle);

/// <summary>A loaded module (<c>CUmodule</c>).</summary>
public readonly record struct CuModule(nint Handle);

/// <summary>A kernel entry point in a module (<c>CUfunction</c>).</summary>
public readonly record struct CuFunction(nint Handle);

/// <summary>A device address (<c>CUdeviceptr</c>, a 64-bit unsigned integer).</summary>
public readonly record struct CuDevicePtr(ulong Address)
{
    /// <summary>True for address 0.</summary>
    public bool IsNull => Address == 0;
    /// <summary>This address advanced by <paramref name="bytes"/>.</summary>
    public CuDevicePtr Offset(long bytes) => new((ulong)((long)Address + bytes));
    /// <summary>The address as a pointer-sized value (for cuBLAS/cuDNN, which take <c>void*</c>).</summary>
    public nint Ptr => (nint)Address;
    /// <inheritdoc/>
    public override string ToString() => $"0x{Address:x}";
}

/// <summary>A captured CUDA graph (<c>CUgraph</c>).</summary>
public readonly record struct CuGraph(nint Handle);

/// <summary>An instantiated, launchable CUDA graph (<c>CUgraphExec</c>).</summary>
public readonly record struct CuGraphExec(nint Handle);

/// <summary>A cuBLAS context (<c>cublasHandle_t</c>).</summary>
public readonly record struct CublasHandle(nint Handle);

/// <summary>A cuDNN context (<c>cudnnHandle_t</c>).</summary>
public readonly record struct CudnnHandle(nint Handle);

/// <summary><c>cudnnTensorDescriptor_t</c>.</summary>
public readonly record struct CudnnTensorDesc(nint Handle);

/// <summary><c>cudnnFilterDescriptor_t</c>.</summary>
public readonly record struct CudnnFilterDesc(nint Handle);

/// <summary><c>cudnnConvolutionDescriptor_t</c>.</summary>
public readonly record struct CudnnConvolutionDesc(nint Handle);

/// <summary><c>cudnnPoolingDescriptor_t</c>.</summary>
public readonly record struct CudnnPoolingDesc(nint Handle);

/// <summary><c>cudnnActivationDescriptor_t</c>.</summary>
public readonly record struct CudnnActivationDesc(nint Handle);
