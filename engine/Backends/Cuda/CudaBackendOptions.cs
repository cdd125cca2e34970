namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>The settings of one <see cref="CudaBackend"/>. Immutable; derive a variant with <c>with</c> and <see cref="CudaBackend.With"/>.</summary>
public sealed record CudaBackendOptions
{
    /// <summary>
    /// Whether MatMul and convolutions may use TF32 tensor cores (≈1e-3 relative error; cuBLAS TF32 math, cuDNN tensor-op
    /// math). Default false: full FP32, which the CPU parity tests hold the backend to.
    /// </summary>
    public bool AllowTf32 { get; init; }
}
