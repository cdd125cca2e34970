using System.Reflection;
using System.Text.RegularExpressions;
using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Tests.Cuda;

/// <summary>
/// Our binding constants and signatures against NVIDIA's headers, where they are on this machine (no GPU needed):
/// cuda.h, cublas_api.h and library_types.h from <c>../shared/tools/cuda-offline-tools.sh --headers</c> (or
/// $MTLMOE_CUDA_INCLUDE, $CUDA_HOME/include, a pip wheel's nvidia/*/include), cudnn_graph.h (or cudnn.h of cuDNN 8) from
/// $MTLMOE_CUDNN_INCLUDE or the same places. Each test is ignored with the reason when its headers are absent.
/// </summary>
public partial class CudaHeaderTests
{
    static IEnumerable<string> IncludeDirs(string envVar)
    {
        var env = Environment.GetEnvironmentVariable(envVar);
        if (!string.IsNullOrEmpty(env)) yield return env;
        var home = Environment.GetEnvironmentVariable("HOME");
        if (home is not null) yield return Path.Combine(home, ".cache", "cuda-offline", "root", "usr", "include");
        var cuda = Environment.GetEnvironmentVariable("CUDA_HOME");
        if (!string.IsNullOrEmpty(cuda)) yield return Path.Combine(cuda, "include");
        yield return "/usr/local/cuda/include";
        foreach (var root in new[] { "/usr/lib/python3/dist-packages", "/opt/torch/.venv/lib" })
        {
            if (!Directory.Exists(root)) continue;
            foreach (var d in Directory.EnumerateDirectories(root, "include", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 5 }))
                if (d.Contains(Path.Combine("nvidia", ""), StringComparison.Ordinal)) yield return d;
        }
    }

    /// <summary>The text of the first <paramref name="names"/> file found, or an ignored test naming what was searched.</summary>
    static string Header(string envVar, params string[] names)
    {
        foreach (var dir in IncludeDirs(envVar))
            foreach (var n in names)
            {
                var p = Path.Combine(dir, n);
                if (File.Exists(p)) return File.ReadAllText(p);
            }
        Assert.Ignore($"{string.Join(" / ", names)} not found (set {envVar} or run ../shared/tools/cuda-offline-tools.sh --headers)");
        return "";
    }

    /// <summary>The value of enumerator <paramref name="name"/> in a header (a number, or another enumerator's value).</summary>
    static long Value(string header, string name)
    {
        var m = Regex.Match(header, $@"\b{name}\b(?:\s+CUDNN_DEPRECATED_ENUM)?\s*=\s*(-?[0-9A-Za-z_x]+)");
        Assert.That(m.Success, Is.True, $"{name} is not defined in the header");
        var v = m.Groups[1].Value;
        return v.StartsWith("0x", StringComparison.Ordinal) ? Convert.ToInt64(v, 16)
            : long.TryParse(v, out var n) ? n : Value(header, v);
    }

    /// <summary>Number of parameters of C function <paramref name="name"/>'s first declaration in a header.</summary>
    static int ParameterCount(string header, string name)
    {
        var m = Regex.Match(header, $@"\b{name}\s*\(([^;{{}}]*?)\)\s*;", RegexOptions.Singleline);
        Assert.That(m.Success, Is.True, $"{name} is not declared in the header");
        var args = m.Groups[1].Value.Trim();
        return args is "" or "void" ? 0 : args.Split(',').Length;
    }

    static int BindingParameters(Type binding, string name) =>
        binding.GetMethod(name, BindingFlags.Public | BindingFlags.Static)?.GetParameters().Length
        ?? throw new AssertionException($"{binding.Name} has no binding {name}");

    [Test]
    public void CublasConstantsMatchTheHeaders()
    {
        var blas = Header("MTLMOE_CUDA_INCLUDE", "cublas_api.h");
        var lib = Header("MTLMOE_CUDA_INCLUDE", "library_types.h");
        var expect = new (string Header, string C, long Ours)[]
        {
            (lib, "CUDA_R_32F", (long)CudaDataType.R32F), (lib, "CUDA_R_16F", (long)CudaDataType.R16F), (lib, "CUDA_R_16BF", (long)CudaDataType.R16BF),
            (blas, "CUBLAS_OP_N", (long)CublasOperation.N), (blas, "CUBLAS_OP_T", (long)CublasOperation.T),
            (blas, "CUBLAS_DEFAULT_MATH", (long)CublasMath.Default), (blas, "CUBLAS_TF32_TENSOR_OP_MATH", (long)CublasMath.Tf32TensorOp),
            (blas, "CUBLAS_COMPUTE_32F", (long)CublasComputeType.Compute32F), (blas, "CUBLAS_COMPUTE_32F_PEDANTIC", (long)CublasComputeType.Compute32FPedantic),
            (blas, "CUBLAS_COMPUTE_32F_FAST_16BF", (long)CublasComputeType.Compute32FFast16BF), (blas, "CUBLAS_COMPUTE_32F_FAST_TF32", (long)CublasComputeType.Compute32FFastTf32),
            (blas, "CUBLAS_GEMM_DEFAULT", (long)CublasGemmAlgo.Default), (blas, "CUBLAS_GEMM_DEFAULT_TENSOR_OP", (long)CublasGemmAlgo.DefaultTensorOp),
            (blas, "CUBLAS_STATUS_SUCCESS", (long)CublasStatus.Success), (blas, "CUBLAS_STATUS_NOT_SUPPORTED", (long)CublasStatus.NotSupported),
        };
        foreach (var (h, c, ours) in expect) Assert.That(ours, Is.EqualTo(Value(h, c)), c);
        foreach (var f in new[] { "cublasGemmEx", "cublasGemmStridedBatchedEx", "cublasSetWorkspace_v2", "cublasSgemm_v2", "cublasSgemmStridedBatched" })
            Assert.That(BindingParameters(typeof(CuBlas), f), Is.EqualTo(ParameterCount(blas, f)), $"{f}: parameter count");
    }

    [Test]
    public void CudaGraphBindingsMatchCudaH()
    {
        var cuda = Header("MTLMOE_CUDA_INCLUDE", "cuda.h");
        var expect = new (string C, long Ours)[]
        {
            ("CU_STREAM_CAPTURE_MODE_GLOBAL", (long)CuStreamCaptureMode.Global), ("CU_STREAM_CAPTURE_MODE_THREAD_LOCAL", (long)CuStreamCaptureMode.ThreadLocal),
            ("CU_STREAM_CAPTURE_MODE_RELAXED", (long)CuStreamCaptureMode.Relaxed),
            ("CU_STREAM_CAPTURE_STATUS_NONE", (long)CuStreamCaptureStatus.None), ("CU_STREAM_CAPTURE_STATUS_ACTIVE", (long)CuStreamCaptureStatus.Active),
            ("CU_STREAM_CAPTURE_STATUS_INVALIDATED", (long)CuStreamCaptureStatus.Invalidated),
            ("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", (long)CuResult.StreamCaptureUnsupported), ("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", (long)CuResult.StreamCaptureInvalidated),
        };
        foreach (var (c, ours) in expect) Assert.That(ours, Is.EqualTo(Value(cuda, c)), c);
        foreach (var f in new[] { "cuStreamBeginCapture_v2", "cuStreamEndCapture", "cuStreamIsCapturing", "cuGraphInstantiateWithFlags",
                     "cuGraphLaunch", "cuGraphExecDestroy", "cuGraphDestroy", "cuGraphGetNodes", "cuMemsetD32Async", "cuLaunchKernel" })
            Assert.That(BindingParameters(typeof(CudaDriver), f), Is.EqualTo(ParameterCount(cuda, f)), $"{f}: parameter count");
    }

    [Test]
    public void CudnnConstantsMatchTheHeaders()
    {
        var dnn = Header("MTLMOE_CUDNN_INCLUDE", "cudnn_graph.h", "cudnn_ops_infer.h", "cudnn.h");
        var expect = new (string C, long Ours)[]
        {
            ("CUDNN_DATA_FLOAT", (long)CudnnDataType.Float), ("CUDNN_DATA_HALF", (long)CudnnDataType.Half), ("CUDNN_DATA_BFLOAT16", (long)CudnnDataType.Bfloat16),
            ("CUDNN_TENSOR_NCHW", (long)CudnnTensorFormat.Nchw), ("CUDNN_TENSOR_NHWC", (long)CudnnTensorFormat.Nhwc),
            ("CUDNN_DEFAULT_MATH", (long)CudnnMathType.Default), ("CUDNN_TENSOR_OP_MATH", (long)CudnnMathType.TensorOp), ("CUDNN_FMA_MATH", (long)CudnnMathType.Fma),
            ("CUDNN_CROSS_CORRELATION", (long)CudnnConvolutionMode.CrossCorrelation),
        };
        foreach (var (c, ours) in expect) Assert.That(ours, Is.EqualTo(Value(dnn, c)), c);
    }
}
