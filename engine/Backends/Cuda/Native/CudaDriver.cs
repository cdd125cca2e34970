using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace MtlMoe.Engine.Backends.Cuda.Native;

/// <summary>
/// CUDA driver API (<c>libcuda.so.1</c>) bindings: one <c>[LibraryImport]</c> per C function with its exact C name
/// (the <c>_v2</c> symbols are what cuda.h's macros resolve to). Wrap every call in <see cref="Check"/>.
/// Signatures follow cuda.h: <c>CUdevice</c> = int, <c>CUdeviceptr</c> = 64-bit, <c>size_t</c> = nuint.
/// </summary>
public static unsafe partial class CudaDriver
{
    /// <summary>Logical library name resolved by <see cref="CudaLibraryResolver"/>.</summary>
    public const string Library = "libcuda.so.1";

    static CudaDriver() => CudaLibraryResolver.Register();

    // --- init and devices ---
    [LibraryImport(Library)] public static partial CuResult cuInit(uint flags);
    [LibraryImport(Library)] public static partial CuResult cuDeviceGetCount(out int count);
    [LibraryImport(Library)] public static partial CuResult cuDeviceGet(out CuDevice device, int ordinal);
    [LibraryImport(Library)] public static partial CuResult cuDeviceGetName(byte* name, int len, CuDevice dev);
    [LibraryImport(Library)] public static partial CuResult cuDeviceGetAttribute(out int value, CuDeviceAttribute attrib, CuDevice dev);
    [LibraryImport(Library)] public static partial CuResult cuDeviceTotalMem_v2(out nuint bytes, CuDevice dev);

    // --- contexts ---
    [LibraryImport(Library)] public static partial CuResult cuDevicePrimaryCtxRetain(out CuContext ctx, CuDevice dev);
    /// <summary><c>cuDevicePrimaryCtxRelease</c> (cuda.h maps it to the _v2 symbol since CUDA 11).</summary>
    [LibraryImport(Library)] public static partial CuResult cuDevicePrimaryCtxRelease_v2(CuDevice dev);
    [LibraryImport(Library)] public static partial CuResult cuCtxSetCurrent(CuContext ctx);
    [LibraryImport(Library)] public static partial CuResult cuCtxSynchronize();

    // --- memory ---
    [LibraryImport(Library)] public static partial CuResult cuMemAlloc_v2(out CuDevicePtr dptr, nuint bytesize);
    [LibraryImport(Library)] public static partial CuResult cuMemFree_v2(CuDevicePtr dptr);
    [LibraryImport(Library)] public static partial CuResult cuMemAllocAsync(out CuDevicePtr dptr, nuint bytesize, CuStream stream);
    [LibraryImport(Library)] public static partial CuResult cuMemFreeAsync(CuDevicePtr dptr, CuStream stream);
    [LibraryImport(Library)] public static partial CuResult cuMemHostAlloc(out nint pp, nuint bytesize, CuMemHostAllocFlags flags);
    [LibraryImport(Library)] public static partial CuResult cuMemFreeHost(nint p);
    [LibraryImport(Library)] public static partial CuResult cuMemcpyHtoDAsync_v2(CuDevicePtr dst, void* src, nuint byteCount, CuStream stream);
    [LibraryImport(Library)] public static partial CuResult cuMemcpyDtoHAsync_v2(void* dst, CuDevicePtr src, nuint byteCount, CuStream stream);
    [LibraryImport(Library)] public static partial CuResult cuMemcpyDtoDAsync_v2(CuDevicePtr dst, CuDevicePtr src, nuint byteCount, CuStream stream);
    /// <summary>Sets <paramref name="count"/> 32-bit words (not bytes) to <paramref name="value"/>.</summary>
    [LibraryImport(Library)] public static partial CuResult cuMemsetD32Async(CuDevicePtr dst, uint value, nuint count, CuStream stream);
    [LibraryImport(Library)] public static partial CuResult cuMemGetInfo_v2(out nuint free, out nuint total);

    // --- streams and events ---
    [LibraryImport(Library)] public static partial CuResult cuStreamCreate(out CuStream stream, CuStreamFlags flags);
    [LibraryImport(Library)] public static partial CuResult cuStreamDestroy_v2(CuStream stream);
    [LibraryImport(Library)] public static partial CuResult cuStreamSynchronize(CuStream stream);
    [LibraryImport(Library)] public static partial CuResult cuEventCreate(out CuEvent ev, CuEventFlags flags);
    [LibraryImport(Library)] public static partial CuResult cuEventRecord(CuEvent ev, CuStream stream);
    [LibraryImport(Library)] public static partial CuResult cuEventSynchronize(CuEvent ev);
    [LibraryImport(Library)] public static partial CuResult cuEventElapsedTime(out float milliseconds, CuEvent start, CuEvent end);
    [LibraryImport(Library)] public static partial CuResult cuEventDestroy_v2(CuEvent ev);

    // --- CUDA graphs: stream capture, instantiate, launch (cuda.h; the exported symbols of CUDA 11.4 to 13) ---
    /// <summary><c>cuStreamBeginCapture</c>: cuda.h maps it to this _v2 symbol (with a capture mode) since CUDA 10.1.</summary>
    [LibraryImport(Library)] public static partial CuResult cuStreamBeginCapture_v2(CuStream stream, CuStreamCaptureMode mode);
    [LibraryImport(Library)] public static partial CuResult cuStreamEndCapture(CuStream stream, out CuGraph graph);
    [LibraryImport(Library)] public static partial CuResult cuStreamIsCapturing(CuStream stream, out CuStreamCaptureStatus status);
    /// <summary>
    /// <c>cuGraphInstantiateWithFlags(CUgraphExec*, CUgraph, unsigned long long)</c>: present under this name from CUDA 11.4
    /// on (CUDA 12 made plain <c>cuGraphInstantiate</c> a macro for it; the older five-argument form is <c>cuGraphInstantiate_v2</c>).
    /// </summary>
    [LibraryImport(Library)] public static partial CuResult cuGraphInstantiateWithFlags(out CuGraphExec exec, CuGraph graph, ulong flags);
    [LibraryImport(Library)] public static partial CuResult cuGraphLaunch(CuGraphExec exec, CuStream stream);
    [LibraryImport(Library)] public static partial CuResult cuGraphExecDestroy(CuGraphExec exec);
    [LibraryImport(Library)] public static partial CuResult cuGraphDestroy(CuGraph graph);
    /// <summary>Number of nodes of a graph (<paramref name="nodes"/> null: only the count).</summary>
    [LibraryImport(Library)] public static partial CuResult cuGraphGetNodes(CuGraph graph, nint* nodes, ref nuint count);

    // --- modules and launch ---
    /// <summary>Loads a NUL-terminated PTX (or cubin) image; options/values are parallel arrays of <see cref="CuJitOption"/>.</summary>
    [LibraryImport(Library)] public static partial CuResult cuModuleLoadDataEx(out CuModule module, void* image, uint numOptions, CuJitOption* options, void** optionValues);
    [LibraryImport(Library)] public static partial CuResult cuModuleUnload(CuModule module);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial CuResult cuModuleGetFunction(out CuFunction function, CuModule module, string name);
    /// <summary>Launches <paramref name="f"/>; <paramref name="kernelParams"/> holds one pointer per kernel argument, pointing at its value.</summary>
    [LibraryImport(Library)]
    public static partial CuResult cuLaunchKernel(CuFunction f, uint gridDimX, uint gridDimY, uint gridDimZ,
        uint blockDimX, uint blockDimY, uint blockDimZ, uint sharedMemBytes, CuStream stream, void** kernelParams, void** extra);
    /// <summary><paramref name="blockSizeToDynamicSMemSize"/> is a <c>size_t (*)(int)</c> callback or null.</summary>
    [LibraryImport(Library)]
    public static partial CuResult cuOccupancyMaxPotentialBlockSize(out int minGridSize, out int blockSize, CuFunction func,
        nint blockSizeToDynamicSMemSize, nuint dynamicSMemSize, int blockSizeLimit);

    // --- errors and profiling ---
    [LibraryImport(Library)] public static partial CuResult cuGetErrorName(CuResult error, out byte* name);
    [LibraryImport(Library)] public static partial CuResult cuGetErrorString(CuResult error, out byte* text);
    [LibraryImport(Library)] public static partial CuResult cuProfilerStart();
    [LibraryImport(Library)] public static partial CuResult cuProfilerStop();

    /// <summary>Throws <see cref="CudaException"/> naming the native function (taken from the call expression) and the error name.</summary>
    public static void Check(CuResult result, [CallerArgumentExpression(nameof(result))] string? call = null, [CallerMemberName] string caller = "")
    {
        if (result != CuResult.Success) throw Error(result, CudaException.FunctionFromExpression(call), caller);
    }

    /// <summary>The exception for a failed driver call (error name from the driver when it is loaded, else from the enum).</summary>
    public static CudaException Error(CuResult result, string function, string? caller = null)
    {
        var (name, text) = Describe(result);
        return new CudaException("cuda", function, name, (int)result, text, caller);
    }

    /// <summary>C name and description of a result; never throws (falls back to the enum name).</summary>
    public static (string Name, string? Text) Describe(CuResult result)
    {
        string name = FallbackName(result);
        string? text = null;
        try
        {
            if (cuGetErrorName(result, out var n) == CuResult.Success && n != null) name = Marshal.PtrToStringUTF8((nint)n) ?? name;
            if (cuGetErrorString(result, out var t) == CuResult.Success && t != null) text = Marshal.PtrToStringUTF8((nint)t);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException) { }
        return (name, text);
    }

    /// <summary>"CUDA_SUCCESS" / "CUDA_ERROR_OUT_OF_MEMORY" from the enum (no driver needed).</summary>
    public static string FallbackName(CuResult result) =>
        result == CuResult.Success ? "CUDA_SUCCESS"
        : Enum.IsDefined(result) ? "CUDA_ERROR_" + CudaException.UpperSnake(result.ToString())
        : $"CUDA_ERROR_{(int)result}";

    /// <summary>The device's marketing name (cuDeviceGetName).</summary>
    public static string DeviceName(CuDevice dev)
    {
        var buf = stackalloc byte[256];
        Check(cuDeviceGetName(buf, 256, dev));
        return Marshal.PtrToStringUTF8((nint)buf) ?? "";
    }

    /// <summary>
    /// Loads a PTX module with the JIT info and error logs captured; on failure the exception message carries the
    /// JIT error log (ptxas output), so a bad kernel names its line.
    /// </summary>
    public static CuModule LoadPtx(string ptx, string moduleName, out string infoLog)
    {
        const int logSize = 16 * 1024;
        var image = Encoding.UTF8.GetBytes(ptx + "\0");
        var info = new byte[logSize];
        var error = new byte[logSize];
        fixed (byte* img = image) fixed (byte* pInfo = info) fixed (byte* pErr = error)
        {
            var opts = stackalloc CuJitOption[] {
                CuJitOption.InfoLogBuffer, CuJitOption.InfoLogBufferSizeBytes,
                CuJitOption.ErrorLogBuffer, CuJitOption.ErrorLogBufferSizeBytes,
                CuJitOption.LogVerbose };
            // Sizes are passed by value in the pointer slot (cuda.h: "option values are cast to void*").
            var vals = stackalloc void*[] { pInfo, (void*)(nuint)logSize, pErr, (void*)(nuint)logSize, (void*)(nuint)1 };
            var r = cuModuleLoadDataEx(out var module, img, 5, opts, vals);
            infoLog = Marshal.PtrToStringUTF8((nint)pInfo) ?? "";
            if (r != CuResult.Success)
            {
                var (name, text) = Describe(r);
                var log = Marshal.PtrToStringUTF8((nint)pErr) ?? "";
                throw new CudaException("cuda", "cuModuleLoadDataEx", name, (int)r,
                    $"{text}; module '{moduleName}' JIT log: {(log.Length > 0 ? log : "(empty)")}", nameof(LoadPtx));
            }
            return module;
        }
    }
}
