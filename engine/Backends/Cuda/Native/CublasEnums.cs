namespace MtlMoe.Engine.Backends.Cuda.Native;

// Values from cublas_api.h and library_types.h (CUDA 11.8 headers; unchanged in 12.x/13.x).

/// <summary><c>cublasStatus_t</c>.</summary>
public enum CublasStatus
{
    Success = 0,
    NotInitialized = 1,
    AllocFailed = 3,
    InvalidValue = 7,
    ArchMismatch = 8,
    MappingError = 11,
    ExecutionFailed = 13,
    InternalError = 14,
    NotSupported = 15,
    LicenseError = 16,
}

/// <summary><c>cublasOperation_t</c>.</summary>
public enum CublasOperation
{
    N = 0,
    T = 1,
    C = 2,
}

/// <summary><c>cublasMath_t</c> (flags combine with <see cref="DisallowReducedPrecisionReduction"/>).</summary>
[Flags]
public enum CublasMath
{
    Default = 0,
    /// <summary>Deprecated: same as compute type 32F_FAST_16F.</summary>
    TensorOp = 1,
    Pedantic = 2,
    Tf32TensorOp = 3,
    DisallowReducedPrecisionReduction = 16,
}

/// <summary><c>cudaDataType</c> (library_types.h).</summary>
public enum CudaDataType
{
    R32F = 0,
    R64F = 1,
    R16F = 2,
    R8I = 3,
    C32F = 4,
    C64F = 5,
    C16F = 6,
    R8U = 8,
    R32I = 10,
    R32U = 12,
    R16BF = 14,
    C16BF = 15,
    R4I = 16,
    R16I = 20,
    R16U = 22,
    R64I = 24,
    R64U = 26,
    R8F_E4M3 = 28,
    R8F_E5M2 = 29,
}

/// <summary><c>cublasComputeType_t</c>.</summary>
public enum CublasComputeType
{
    Compute16F = 64,
    Compute16FPedantic = 65,
    Compute32F = 68,
    Compute32FPedantic = 69,
    Compute64F = 70,
    Compute64FPedantic = 71,
    Compute32I = 72,
    Compute32IPedantic = 73,
    /// <summary>fp32 accumulate, inputs may be rounded to fp16 (or TF32).</summary>
    Compute32FFast16F = 74,
    /// <summary>fp32 accumulate, inputs may be rounded to bf16 (or TF32).</summary>
    Compute32FFast16BF = 75,
    /// <summary>fp32 accumulate, inputs rounded to TF32 (Ampere+ tensor cores).</summary>
    Compute32FFastTf32 = 77,
}

/// <summary><c>cublasGemmAlgo_t</c> (only the heuristics-chosen values; numbered algos are ignored on Ampere+).</summary>
public enum CublasGemmAlgo
{
    Default = -1,
    DefaultTensorOp = 99,
}
