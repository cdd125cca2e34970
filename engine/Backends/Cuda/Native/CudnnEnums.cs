using System.Runtime.InteropServices;

namespace MtlMoe.Engine.Backends.Cuda.Native;

// Values from cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h (cuDNN 9). cuDNN 8 uses the same values for every enum
// here except cudnnStatus_t (8.x: 1..14); messages use cudnnGetErrorString, which is right for either.

/// <summary><c>cudnnStatus_t</c> (cuDNN 9 numbering).</summary>
public enum CudnnStatus
{
    Success = 0,
    NotInitialized = 1001,
    SublibraryVersionMismatch = 1002,
    SerializationVersionMismatch = 1003,
    Deprecated = 1004,
    LicenseError = 1005,
    RuntimeInProgress = 1006,
    RuntimeFpOverflow = 1007,
    SublibraryLoadingFailed = 1008,
    BadParam = 2000,
    InvalidValue = 2001,
    BadParamNullPointer = 2002,
    BadParamMisalignedPointer = 2003,
    BadParamNotFinalized = 2004,
    BadParamOutOfBound = 2005,
    BadParamSizeInsufficient = 2006,
    BadParamStreamMismatch = 2007,
    BadParamShapeMismatch = 2008,
    BadParamDuplicatedEntries = 2009,
    BadParamAttributeType = 2010,
    BadParamCudaGraphMismatch = 2011,
    BadParamDescriptorType = 2012,
    NotSupported = 3000,
    NotSupportedGraphPattern = 3001,
    NotSupportedShape = 3002,
    NotSupportedDataType = 3003,
    NotSupportedLayout = 3004,
    NotSupportedIncompatibleCudaDriver = 3005,
    NotSupportedIncompatibleCudart = 3006,
    NotSupportedArchMismatch = 3007,
    NotSupportedRuntimePrerequisiteMissing = 3008,
    NotSupportedSublibraryUnavailable = 3009,
    NotSupportedSharedMemoryInsufficient = 3010,
    NotSupportedPadding = 3011,
    NotSupportedBadLaunchParam = 3012,
    NotSupportedCudaGraphNativeApi = 3013,
    InternalError = 4000,
    InternalErrorCompilationFailed = 4001,
    InternalErrorUnexpectedValue = 4002,
    InternalErrorHostAllocationFailed = 4003,
    InternalErrorDeviceAllocationFailed = 4004,
    InternalErrorBadLaunchParam = 4005,
    InternalErrorTextureCreationFailed = 4006,
    ExecutionFailed = 5000,
    ExecutionFailedCudaDriver = 5001,
    ExecutionFailedCublas = 5002,
    ExecutionFailedCudart = 5003,
    ExecutionFailedCurand = 5004,
}

/// <summary><c>cudnnDataType_t</c>.</summary>
public enum CudnnDataType { Float = 0, Double = 1, Half = 2, Int8 = 3, Int32 = 4, Uint8 = 6, Bfloat16 = 9, Int64 = 10, Boolean = 11 }

/// <summary><c>cudnnTensorFormat_t</c>.</summary>
public enum CudnnTensorFormat { Nchw = 0, Nhwc = 1, NchwVectC = 2 }

/// <summary><c>cudnnMathType_t</c>.</summary>
public enum CudnnMathType { Default = 0, TensorOp = 1, TensorOpAllowConversion = 2, Fma = 3 }

/// <summary><c>cudnnNanPropagation_t</c>.</summary>
public enum CudnnNanPropagation { NotPropagate = 0, Propagate = 1 }

/// <summary><c>cudnnConvolutionMode_t</c>; deep-learning "convolution" is <see cref="CrossCorrelation"/>.</summary>
public enum CudnnConvolutionMode { Convolution = 0, CrossCorrelation = 1 }

/// <summary><c>cudnnPoolingMode_t</c>.</summary>
public enum CudnnPoolingMode { Max = 0, AverageCountIncludePadding = 1, AverageCountExcludePadding = 2, MaxDeterministic = 3 }

/// <summary><c>cudnnActivationMode_t</c>.</summary>
public enum CudnnActivationMode { Sigmoid = 0, Relu = 1, Tanh = 2, ClippedRelu = 3, Elu = 4, Identity = 5, Swish = 6 }

/// <summary><c>cudnnBatchNormMode_t</c>; NCHW per-channel statistics are <see cref="Spatial"/>.</summary>
public enum CudnnBatchNormMode { PerActivation = 0, Spatial = 1, SpatialPersistent = 2 }

/// <summary><c>cudnnDeterminism_t</c>.</summary>
public enum CudnnDeterminism { NonDeterministic = 0, Deterministic = 1 }

/// <summary><c>cudnnConvolutionFwdAlgo_t</c>.</summary>
public enum CudnnConvFwdAlgo { ImplicitGemm = 0, ImplicitPrecompGemm = 1, Gemm = 2, Direct = 3, Fft = 4, FftTiling = 5, Winograd = 6, WinogradNonfused = 7, Count = 8 }

/// <summary><c>cudnnConvolutionBwdDataAlgo_t</c>.</summary>
public enum CudnnConvBwdDataAlgo { Algo0 = 0, Algo1 = 1, Fft = 2, FftTiling = 3, Winograd = 4, WinogradNonfused = 5, Count = 6 }

/// <summary><c>cudnnConvolutionBwdFilterAlgo_t</c>.</summary>
public enum CudnnConvBwdFilterAlgo { Algo0 = 0, Algo1 = 1, Fft = 2, Algo3 = 3, Winograd = 4, WinogradNonfused = 5, FftTiling = 6, Count = 7 }

/// <summary><c>cudnnConvolutionFwdAlgoPerf_t</c>: 48 bytes (int, int, float, pad, size_t, int, int, int[3], pad).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct CudnnConvFwdAlgoPerf
{
    public CudnnConvFwdAlgo Algo;
    public CudnnStatus Status;
    public float Time;
    public nuint Memory;
    public CudnnDeterminism Determinism;
    public CudnnMathType MathType;
    int _r0, _r1, _r2;
}

/// <summary><c>cudnnConvolutionBwdDataAlgoPerf_t</c> (same layout as the forward one).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct CudnnConvBwdDataAlgoPerf
{
    public CudnnConvBwdDataAlgo Algo;
    public CudnnStatus Status;
    public float Time;
    public nuint Memory;
    public CudnnDeterminism Determinism;
    public CudnnMathType MathType;
    int _r0, _r1, _r2;
}

/// <summary><c>cudnnConvolutionBwdFilterAlgoPerf_t</c> (same layout as the forward one).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct CudnnConvBwdFilterAlgoPerf
{
    public CudnnConvBwdFilterAlgo Algo;
    public CudnnStatus Status;
    public float Time;
    public nuint Memory;
    public CudnnDeterminism Determinism;
    public CudnnMathType MathType;
    int _r0, _r1, _r2;
}
