using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Tests.Cuda;

[Category("Cuda")]
public class CudaErrorTests
{
    // Stand-ins named like the native functions: Check reads the function name from the call expression.
    static CuResult cuMemAlloc_v2() => CuResult.OutOfMemory;
    static CublasStatus cublasSgemm_v2() => CublasStatus.InvalidValue;
    static CudnnStatus cudnnConvolutionForward() => CudnnStatus.BadParam;

    [Test]
    public void DriverErrorNamesFunctionAndError()
    {
        var ex = Assert.Throws<CudaException>(() => CudaDriver.Check(cuMemAlloc_v2()));
        Assert.That(ex!.Message, Does.StartWith("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2)"));
        Assert.That(ex.Message, Does.Contain(nameof(DriverErrorNamesFunctionAndError)), "names the calling method");
        Assert.That(ex.Function, Is.EqualTo("cuMemAlloc_v2"));
        Assert.That(ex.Code, Is.EqualTo(2));
    }

    [Test]
    public void CublasErrorNamesFunctionAndStatus()
    {
        var ex = Assert.Throws<CudaException>(() => CuBlas.Check(cublasSgemm_v2()));
        Assert.That(ex!.Message, Does.StartWith("cublasSgemm_v2 failed: CUBLAS_STATUS_INVALID_VALUE (7)"));
        Assert.That(ex.Library, Is.EqualTo("cublas"));
    }

    [Test]
    public void CudnnErrorNamesFunctionAndStatus()
    {
        var ex = Assert.Throws<CudaException>(() => CuDnn.Check(cudnnConvolutionForward()));
        Assert.That(ex!.Message, Does.StartWith("cudnnConvolutionForward failed: CUDNN_STATUS_BAD_PARAM (2000)"));
    }

    [Test]
    public void SuccessDoesNotThrow()
    {
        Assert.DoesNotThrow(() => CudaDriver.Check(CuResult.Success));
        Assert.DoesNotThrow(() => CuBlas.Check(CublasStatus.Success));
        Assert.DoesNotThrow(() => CuDnn.Check(CudnnStatus.Success));
    }

    [TestCase(CuResult.Success, "CUDA_SUCCESS")]
    [TestCase(CuResult.InvalidValue, "CUDA_ERROR_INVALID_VALUE")]
    [TestCase(CuResult.NoDevice, "CUDA_ERROR_NO_DEVICE")]
    [TestCase(CuResult.InvalidPtx, "CUDA_ERROR_INVALID_PTX")]
    [TestCase(CuResult.NvlinkUncorrectable, "CUDA_ERROR_NVLINK_UNCORRECTABLE")]
    [TestCase(CuResult.LaunchOutOfResources, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES")]
    [TestCase(CuResult.Unknown, "CUDA_ERROR_UNKNOWN")]
    public void FallbackNamesAreTheCNames(CuResult r, string name) => Assert.That(CudaDriver.FallbackName(r), Is.EqualTo(name));

    [Test]
    public void ResultCodesMatchCudaH()
    {
        // Spot checks against cuda.h (enum cudaError_enum).
        Assert.That((int)CuResult.OutOfMemory, Is.EqualTo(2));
        Assert.That((int)CuResult.NoDevice, Is.EqualTo(100));
        Assert.That((int)CuResult.InvalidPtx, Is.EqualTo(218));
        Assert.That((int)CuResult.IllegalAddress, Is.EqualTo(700));
        Assert.That((int)CuResult.LaunchFailed, Is.EqualTo(719));
        Assert.That((int)CuResult.Unknown, Is.EqualTo(999));
        Assert.That(Enum.GetValues<CuResult>().Select(CudaDriver.FallbackName), Is.Unique);
    }

    [Test]
    public unsafe void PerfStructsHaveTheCudnnLayout()
    {
        // int algo, int status, float time, (pad), size_t memory, int determinism, int mathType, int reserved[3], (pad)
        Assert.That(sizeof(CudnnConvFwdAlgoPerf), Is.EqualTo(48));
        Assert.That(sizeof(CudnnConvBwdDataAlgoPerf), Is.EqualTo(48));
        Assert.That(sizeof(CudnnConvBwdFilterAlgoPerf), Is.EqualTo(48));
        Assert.That(System.Runtime.InteropServices.Marshal.OffsetOf<CudnnConvFwdAlgoPerf>(nameof(CudnnConvFwdAlgoPerf.Memory)), Is.EqualTo((nint)16));
    }
}
