namespace MtlMoe.Engine.Backends.Cuda.Native;

// Values from cuda.h (CUDA 11.8 headers; these values are stable across 11.x-13.x).

/// <summary>Subset of <c>CUdevice_attribute</c> the engine queries.</summary>
public enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxBlockDimX = 2,
    MaxGridDimX = 5,
    MaxSharedMemoryPerBlock = 8,
    TotalConstantMemory = 9,
    WarpSize = 10,
    MaxRegistersPerBlock = 12,
    ClockRate = 13,
    MultiprocessorCount = 16,
    MemoryClockRate = 36,
    GlobalMemoryBusWidth = 37,
    L2CacheSize = 38,
    MaxThreadsPerMultiprocessor = 39,
    UnifiedAddressing = 41,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerMultiprocessor = 81,
    MaxRegistersPerMultiprocessor = 82,
    MaxSharedMemoryPerBlockOptin = 97,
    MaxBlocksPerMultiprocessor = 106,
    MemoryPoolsSupported = 115,
}

/// <summary><c>CUjit_option</c> keys for <c>cuModuleLoadDataEx</c>.</summary>
public enum CuJitOption
{
    MaxRegisters = 0,
    ThreadsPerBlock = 1,
    WallTime = 2,
    InfoLogBuffer = 3,
    InfoLogBufferSizeBytes = 4,
    ErrorLogBuffer = 5,
    ErrorLogBufferSizeBytes = 6,
    OptimizationLevel = 7,
    TargetFromCuContext = 8,
    Target = 9,
    FallbackStrategy = 10,
    GenerateDebugInfo = 11,
    LogVerbose = 12,
    GenerateLineInfo = 13,
    CacheMode = 14,
}

/// <summary>Flags of <c>cuStreamCreate</c> (<c>CUstream_flags</c>).</summary>
[Flags]
public enum CuStreamFlags : uint
{
    Default = 0,
    NonBlocking = 1,
}

/// <summary>Flags of <c>cuEventCreate</c> (<c>CUevent_flags</c>).</summary>
[Flags]
public enum CuEventFlags : uint
{
    Default = 0,
    BlockingSync = 1,
    DisableTiming = 2,
    Interprocess = 4,
}

/// <summary>Flags of <c>cuMemHostAlloc</c> (<c>CU_MEMHOSTALLOC_*</c>).</summary>
[Flags]
public enum CuMemHostAllocFlags : uint
{
    Default = 0,
    Portable = 1,
    DeviceMap = 2,
    WriteCombined = 4,
}

/// <summary><c>CUstreamCaptureMode</c> (cuda.h).</summary>
public enum CuStreamCaptureMode
{
    /// <summary>CU_STREAM_CAPTURE_MODE_GLOBAL: unsafe calls (e.g. cuMemAlloc) from any thread fail while capturing.</summary>
    Global = 0,
    /// <summary>CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: only this thread's unsafe calls fail.</summary>
    ThreadLocal = 1,
    /// <summary>CU_STREAM_CAPTURE_MODE_RELAXED: nothing is refused.</summary>
    Relaxed = 2,
}

/// <summary><c>CUstreamCaptureStatus</c> (cuda.h).</summary>
public enum CuStreamCaptureStatus
{
    /// <summary>CU_STREAM_CAPTURE_STATUS_NONE.</summary>
    None = 0,
    /// <summary>CU_STREAM_CAPTURE_STATUS_ACTIVE.</summary>
    Active = 1,
    /// <summary>CU_STREAM_CAPTURE_STATUS_INVALIDATED: a refused call broke the capture; end it and discard the graph.</summary>
    Invalidated = 2,
}
