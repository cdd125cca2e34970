using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MtlMoe.Engine.Backends.Cuda.Native;

/// <summary>
/// cuBLAS bindings (<c>libcublas.so.13/.12/.11</c>, resolved by <see cref="CudaLibraryResolver"/>). Column-major,
/// as in cublas_api.h; row-major callers compute Cᵀ = Bᵀ·Aᵀ by swapping operands. Scalars (alpha/beta) are host
/// pointers (the default <c>CUBLAS_POINTER_MODE_HOST</c>). Device buffers are <see cref="CuDevicePtr"/>.
/// </summary>
public static unsafe partial class CuBlas
{
    /// <summary>Logical library name resolved by <see cref="CudaLibraryResolver"/>.</summary>
    public const string Library = "libcublas";

    static CuBlas() => CudaLibraryResolver.Register();

    [LibraryImport(Library)] public static partial CublasStatus cublasCreate_v2(out CublasHandle handle);
    [LibraryImport(Library)] public static partial CublasStatus cublasDestroy_v2(CublasHandle handle);
    [LibraryImport(Library)] public static partial CublasStatus cublasSetStream_v2(CublasHandle handle, CuStream stream);
    [LibraryImport(Library)] public static partial CublasStatus cublasSetMathMode(CublasHandle handle, CublasMath mode);
    [LibraryImport(Library)] public static partial CublasStatus cublasGetVersion_v2(CublasHandle handle, out int version);
    /// <summary>Gives cuBLAS a fixed workspace (cublas_api.h: <c>void*</c>, <c>size_t</c>): it then never allocates on its own, which a CUDA graph capture requires.</summary>
    [LibraryImport(Library)] public static partial CublasStatus cublasSetWorkspace_v2(CublasHandle handle, CuDevicePtr workspace, nuint workspaceSizeInBytes);

    /// <summary>C = alpha·op(A)·op(B) + beta·C, column-major; A is m×k after op, B k×n, C m×n.</summary>
    [LibraryImport(Library)]
    public static partial CublasStatus cublasSgemm_v2(CublasHandle handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, float* alpha, CuDevicePtr a, int lda, CuDevicePtr b, int ldb, float* beta, CuDevicePtr c, int ldc);

    /// <summary>Batched SGEMM with fixed element strides between the matrices of consecutive batches.</summary>
    [LibraryImport(Library)]
    public static partial CublasStatus cublasSgemmStridedBatched(CublasHandle handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, float* alpha, CuDevicePtr a, int lda, long strideA, CuDevicePtr b, int ldb, long strideB,
        float* beta, CuDevicePtr c, int ldc, long strideC, int batchCount);

    /// <summary>Mixed-precision GEMM: storage types per operand and a compute type (TF32/BF16/FP32 accumulate); alpha/beta match the compute type's scalar type (float for the 32F kinds).</summary>
    [LibraryImport(Library)]
    public static partial CublasStatus cublasGemmEx(CublasHandle handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, void* alpha, CuDevicePtr a, CudaDataType aType, int lda, CuDevicePtr b, CudaDataType bType, int ldb,
        void* beta, CuDevicePtr c, CudaDataType cType, int ldc, CublasComputeType computeType, CublasGemmAlgo algo);

    /// <summary>Strided-batched <see cref="cublasGemmEx"/>: the strides are element counts (<c>long long int</c> in cublas_api.h).</summary>
    [LibraryImport(Library)]
    public static partial CublasStatus cublasGemmStridedBatchedEx(CublasHandle handle, CublasOperation transa, CublasOperation transb,
        int m, int n, int k, void* alpha, CuDevicePtr a, CudaDataType aType, int lda, long strideA, CuDevicePtr b, CudaDataType bType, int ldb,
        long strideB, void* beta, CuDevicePtr c, CudaDataType cType, int ldc, long strideC, int batchCount,
        CublasComputeType computeType, CublasGemmAlgo algo);

    /// <summary>Throws <see cref="CudaException"/> naming the cuBLAS function and status (e.g. CUBLAS_STATUS_INVALID_VALUE).</summary>
    public static void Check(CublasStatus status, [CallerArgumentExpression(nameof(status))] string? call = null, [CallerMemberName] string caller = "")
    {
        if (status != CublasStatus.Success)
            throw new CudaException("cublas", CudaException.FunctionFromExpression(call), StatusName(status), (int)status, null, caller);
    }

    /// <summary>"CUBLAS_STATUS_…" for a status (what cublasGetStatusName returns, computed without the library).</summary>
    public static string StatusName(CublasStatus status) =>
        Enum.IsDefined(status) ? "CUBLAS_STATUS_" + CudaException.UpperSnake(status.ToString()) : $"CUBLAS_STATUS_{(int)status}";
}
