namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>The settings of one <see cref="CudaBackend"/>. Immutable; derive a variant with <c>with</c> and <see cref="CudaBackend.With"/>.</summary>
public sealed record CudaBackendOptions
{
    /// <summary>
    /// Whether MatMul and convolutions may use TF32 tensor cores (≈1e-3 relative error; cuBLAS TF32 math, cuDNN tensor-op
    /// math). Default false: full FP32, which the CPU parity tests hold the backend to.
    /// </summary>
    public bool AllowTf32 { get; init; }

    /// <summary>
    /// Channels-last activations: convolutions run on NHWC tensors (cuDNN NHWC descriptors, KRSC filters), batch-norm,
    /// ReLU backward, casts and same-shape pointwise ops keep NHWC, and only the network's edges convert (the input's
    /// first convolution, pooling, anything that reads the tensor as NCHW). Off by default; Bench's <c>conv-layers</c>
    /// prints every ResNet convolution's NCHW and NHWC times, the per-layer check of the first GPU call.
    /// </summary>
    public bool ChannelsLast { get; init; }
}
