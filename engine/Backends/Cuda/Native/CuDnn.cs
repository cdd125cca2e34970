using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MtlMoe.Engine.Backends.Cuda.Native;

/// <summary>
/// cuDNN bindings (<c>libcudnn.so.9</c>, else <c>.8</c>; in cuDNN 9 the front library re-exports every legacy
/// function of the ops/cnn sub-libraries). Signatures follow cudnn_graph.h, cudnn_ops.h and cudnn_cnn.h.
/// Scaling factors alpha/beta are host pointers to float for float tensors (double for double tensors).
/// Device buffers are <see cref="CuDevicePtr"/>; prefer the IDisposable descriptor classes in this namespace.
/// </summary>
public static unsafe partial class CuDnn
{
    /// <summary>Logical library name resolved by <see cref="CudaLibraryResolver"/>.</summary>
    public const string Library = "libcudnn";

    static CuDnn() => CudaLibraryResolver.Register();

    // --- library and handle ---
    [LibraryImport(Library)] public static partial nuint cudnnGetVersion();
    [LibraryImport(Library)] public static partial nint cudnnGetErrorString(CudnnStatus status);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnCreate(out CudnnHandle handle);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnDestroy(CudnnHandle handle);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetStream(CudnnHandle handle, CuStream stream);

    // --- tensor descriptors ---
    [LibraryImport(Library)] public static partial CudnnStatus cudnnCreateTensorDescriptor(out CudnnTensorDesc desc);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetTensor4dDescriptor(CudnnTensorDesc desc, CudnnTensorFormat format, CudnnDataType dataType, int n, int c, int h, int w);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetTensor4dDescriptorEx(CudnnTensorDesc desc, CudnnDataType dataType, int n, int c, int h, int w, int nStride, int cStride, int hStride, int wStride);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetTensorNdDescriptor(CudnnTensorDesc desc, CudnnDataType dataType, int nbDims, int* dims, int* strides);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnDestroyTensorDescriptor(CudnnTensorDesc desc);

    // --- filter descriptors (note: dataType before format, unlike the tensor 4d setter) ---
    [LibraryImport(Library)] public static partial CudnnStatus cudnnCreateFilterDescriptor(out CudnnFilterDesc desc);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetFilter4dDescriptor(CudnnFilterDesc desc, CudnnDataType dataType, CudnnTensorFormat format, int k, int c, int h, int w);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetFilterNdDescriptor(CudnnFilterDesc desc, CudnnDataType dataType, CudnnTensorFormat format, int nbDims, int* filterDims);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnDestroyFilterDescriptor(CudnnFilterDesc desc);

    // --- convolution descriptors ---
    [LibraryImport(Library)] public static partial CudnnStatus cudnnCreateConvolutionDescriptor(out CudnnConvolutionDesc desc);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetConvolution2dDescriptor(CudnnConvolutionDesc desc, int padH, int padW, int strideH, int strideW, int dilationH, int dilationW, CudnnConvolutionMode mode, CudnnDataType computeType);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetConvolutionNdDescriptor(CudnnConvolutionDesc desc, int arrayLength, int* pads, int* filterStrides, int* dilations, CudnnConvolutionMode mode, CudnnDataType computeType);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetConvolutionGroupCount(CudnnConvolutionDesc desc, int groupCount);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetConvolutionMathType(CudnnConvolutionDesc desc, CudnnMathType mathType);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnGetConvolution2dForwardOutputDim(CudnnConvolutionDesc desc, CudnnTensorDesc input, CudnnFilterDesc filter, out int n, out int c, out int h, out int w);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnDestroyConvolutionDescriptor(CudnnConvolutionDesc desc);

    // --- pooling and activation descriptors ---
    [LibraryImport(Library)] public static partial CudnnStatus cudnnCreatePoolingDescriptor(out CudnnPoolingDesc desc);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetPooling2dDescriptor(CudnnPoolingDesc desc, CudnnPoolingMode mode, CudnnNanPropagation nan, int windowH, int windowW, int padH, int padW, int strideH, int strideW);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetPoolingNdDescriptor(CudnnPoolingDesc desc, CudnnPoolingMode mode, CudnnNanPropagation nan, int nbDims, int* window, int* padding, int* strides);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnDestroyPoolingDescriptor(CudnnPoolingDesc desc);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnCreateActivationDescriptor(out CudnnActivationDesc desc);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnSetActivationDescriptor(CudnnActivationDesc desc, CudnnActivationMode mode, CudnnNanPropagation nan, double coef);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnDestroyActivationDescriptor(CudnnActivationDesc desc);

    // --- convolution algorithm search (Find*Ex times real runs on the given buffers; Get*_v7 uses heuristics) ---
    [LibraryImport(Library)] public static partial CudnnStatus cudnnFindConvolutionForwardAlgorithmEx(CudnnHandle handle, CudnnTensorDesc xDesc, CuDevicePtr x, CudnnFilterDesc wDesc, CuDevicePtr w, CudnnConvolutionDesc convDesc, CudnnTensorDesc yDesc, CuDevicePtr y, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvFwdAlgoPerf* perfResults, CuDevicePtr workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnFindConvolutionBackwardDataAlgorithmEx(CudnnHandle handle, CudnnFilterDesc wDesc, CuDevicePtr w, CudnnTensorDesc dyDesc, CuDevicePtr dy, CudnnConvolutionDesc convDesc, CudnnTensorDesc dxDesc, CuDevicePtr dx, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvBwdDataAlgoPerf* perfResults, CuDevicePtr workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnFindConvolutionBackwardFilterAlgorithmEx(CudnnHandle handle, CudnnTensorDesc xDesc, CuDevicePtr x, CudnnTensorDesc dyDesc, CuDevicePtr dy, CudnnConvolutionDesc convDesc, CudnnFilterDesc dwDesc, CuDevicePtr dw, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvBwdFilterAlgoPerf* perfResults, CuDevicePtr workSpace, nuint workSpaceSizeInBytes);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnGetConvolutionForwardAlgorithm_v7(CudnnHandle handle, CudnnTensorDesc xDesc, CudnnFilterDesc wDesc, CudnnConvolutionDesc convDesc, CudnnTensorDesc yDesc, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvFwdAlgoPerf* perfResults);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnGetConvolutionBackwardDataAlgorithm_v7(CudnnHandle handle, CudnnFilterDesc wDesc, CudnnTensorDesc dyDesc, CudnnConvolutionDesc convDesc, CudnnTensorDesc dxDesc, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvBwdDataAlgoPerf* perfResults);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnGetConvolutionBackwardFilterAlgorithm_v7(CudnnHandle handle, CudnnTensorDesc xDesc, CudnnTensorDesc dyDesc, CudnnConvolutionDesc convDesc, CudnnFilterDesc dwDesc, int requestedAlgoCount, out int returnedAlgoCount, CudnnConvBwdFilterAlgoPerf* perfResults);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnGetConvolutionForwardWorkspaceSize(CudnnHandle handle, CudnnTensorDesc xDesc, CudnnFilterDesc wDesc, CudnnConvolutionDesc convDesc, CudnnTensorDesc yDesc, CudnnConvFwdAlgo algo, out nuint sizeInBytes);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnGetConvolutionBackwardDataWorkspaceSize(CudnnHandle handle, CudnnFilterDesc wDesc, CudnnTensorDesc dyDesc, CudnnConvolutionDesc convDesc, CudnnTensorDesc dxDesc, CudnnConvBwdDataAlgo algo, out nuint sizeInBytes);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnGetConvolutionBackwardFilterWorkspaceSize(CudnnHandle handle, CudnnTensorDesc xDesc, CudnnTensorDesc dyDesc, CudnnConvolutionDesc convDesc, CudnnFilterDesc dwDesc, CudnnConvBwdFilterAlgo algo, out nuint sizeInBytes);

    // --- convolution ---
    [LibraryImport(Library)] public static partial CudnnStatus cudnnConvolutionForward(CudnnHandle handle, void* alpha, CudnnTensorDesc xDesc, CuDevicePtr x, CudnnFilterDesc wDesc, CuDevicePtr w, CudnnConvolutionDesc convDesc, CudnnConvFwdAlgo algo, CuDevicePtr workSpace, nuint workSpaceSizeInBytes, void* beta, CudnnTensorDesc yDesc, CuDevicePtr y);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnConvolutionBackwardData(CudnnHandle handle, void* alpha, CudnnFilterDesc wDesc, CuDevicePtr w, CudnnTensorDesc dyDesc, CuDevicePtr dy, CudnnConvolutionDesc convDesc, CudnnConvBwdDataAlgo algo, CuDevicePtr workSpace, nuint workSpaceSizeInBytes, void* beta, CudnnTensorDesc dxDesc, CuDevicePtr dx);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnConvolutionBackwardFilter(CudnnHandle handle, void* alpha, CudnnTensorDesc xDesc, CuDevicePtr x, CudnnTensorDesc dyDesc, CuDevicePtr dy, CudnnConvolutionDesc convDesc, CudnnConvBwdFilterAlgo algo, CuDevicePtr workSpace, nuint workSpaceSizeInBytes, void* beta, CudnnFilterDesc dwDesc, CuDevicePtr dw);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnConvolutionBackwardBias(CudnnHandle handle, void* alpha, CudnnTensorDesc dyDesc, CuDevicePtr dy, void* beta, CudnnTensorDesc dbDesc, CuDevicePtr db);

    // --- batch normalization (bnDesc: [1, C, 1, 1] for Spatial mode) ---
    [LibraryImport(Library)] public static partial CudnnStatus cudnnBatchNormalizationForwardTraining(CudnnHandle handle, CudnnBatchNormMode mode, void* alpha, void* beta, CudnnTensorDesc xDesc, CuDevicePtr x, CudnnTensorDesc yDesc, CuDevicePtr y, CudnnTensorDesc bnScaleBiasMeanVarDesc, CuDevicePtr bnScale, CuDevicePtr bnBias, double exponentialAverageFactor, CuDevicePtr resultRunningMean, CuDevicePtr resultRunningVariance, double epsilon, CuDevicePtr resultSaveMean, CuDevicePtr resultSaveInvVariance);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnBatchNormalizationForwardInference(CudnnHandle handle, CudnnBatchNormMode mode, void* alpha, void* beta, CudnnTensorDesc xDesc, CuDevicePtr x, CudnnTensorDesc yDesc, CuDevicePtr y, CudnnTensorDesc bnScaleBiasMeanVarDesc, CuDevicePtr bnScale, CuDevicePtr bnBias, CuDevicePtr estimatedMean, CuDevicePtr estimatedVariance, double epsilon);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnBatchNormalizationBackward(CudnnHandle handle, CudnnBatchNormMode mode, void* alphaDataDiff, void* betaDataDiff, void* alphaParamDiff, void* betaParamDiff, CudnnTensorDesc xDesc, CuDevicePtr x, CudnnTensorDesc dyDesc, CuDevicePtr dy, CudnnTensorDesc dxDesc, CuDevicePtr dx, CudnnTensorDesc dBnScaleBiasDesc, CuDevicePtr bnScale, CuDevicePtr dBnScaleResult, CuDevicePtr dBnBiasResult, double epsilon, CuDevicePtr savedMean, CuDevicePtr savedInvVariance);

    // --- pooling and activation ---
    [LibraryImport(Library)] public static partial CudnnStatus cudnnPoolingForward(CudnnHandle handle, CudnnPoolingDesc poolingDesc, void* alpha, CudnnTensorDesc xDesc, CuDevicePtr x, void* beta, CudnnTensorDesc yDesc, CuDevicePtr y);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnPoolingBackward(CudnnHandle handle, CudnnPoolingDesc poolingDesc, void* alpha, CudnnTensorDesc yDesc, CuDevicePtr y, CudnnTensorDesc dyDesc, CuDevicePtr dy, CudnnTensorDesc xDesc, CuDevicePtr x, void* beta, CudnnTensorDesc dxDesc, CuDevicePtr dx);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnActivationForward(CudnnHandle handle, CudnnActivationDesc activationDesc, void* alpha, CudnnTensorDesc xDesc, CuDevicePtr x, void* beta, CudnnTensorDesc yDesc, CuDevicePtr y);
    [LibraryImport(Library)] public static partial CudnnStatus cudnnActivationBackward(CudnnHandle handle, CudnnActivationDesc activationDesc, void* alpha, CudnnTensorDesc yDesc, CuDevicePtr y, CudnnTensorDesc dyDesc, CuDevicePtr dy, CudnnTensorDesc xDesc, CuDevicePtr x, void* beta, CudnnTensorDesc dxDesc, CuDevicePtr dx);

    /// <summary>Throws <see cref="CudaException"/> naming the cuDNN function, the status name and cuDNN's message.</summary>
    public static void Check(CudnnStatus status, [CallerArgumentExpression(nameof(status))] string? call = null, [CallerMemberName] string caller = "")
    {
        if (status == CudnnStatus.Success) return;
        string? text = null;
        try { text = Marshal.PtrToStringUTF8(cudnnGetErrorString(status)); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException) { }
        throw new CudaException("cudnn", CudaException.FunctionFromExpression(call), StatusName(status), (int)status, text, caller);
    }

    /// <summary>"CUDNN_STATUS_…" for a cuDNN 9 status code.</summary>
    public static string StatusName(CudnnStatus status) =>
        Enum.IsDefined(status) ? "CUDNN_STATUS_" + CudaException.UpperSnake(status.ToString()) : $"CUDNN_STATUS_{(int)status}";
}
