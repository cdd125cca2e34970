using System.Runtime.InteropServices;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Engine.Backends.Cuda;

// Explicit host fallback (download → CPU backend → upload) for the few primitives where a kernel is not worth it
// (integer reductions such as counting correct labels, top-k smallest, gathers whose index is smaller than the
// source in a non-indexed dim). It synchronises the stream; every use says why at its call site.
public sealed partial class CudaBackend
{
    /// <summary>A host copy of a whole device storage (same length, same layout semantics).</summary>
    internal Storage ToHost(Storage s)
    {
        var c = Cu(s, "to_host");
        return s.DType switch
        {
            DType.Float32 => HostCopy<float>(c),
            DType.Float64 => HostCopy<double>(c),
            DType.Int32 => HostCopy<int>(c),
            _ => HostCopy<long>(c),
        };
    }

    Storage HostCopy<T>(CudaStorage c) where T : unmanaged
    {
        var a = new T[c.Length];
        if (a.Length > 0) Context.CopyToHost(c.Ptr, MemoryMarshal.AsBytes(a.AsSpan()));
        return BackendRegistry.Cpu.Upload<T>(a);
    }

    /// <summary>A device copy of a dense host storage; releases the host storage.</summary>
    internal Storage ToDevice(Storage host)
    {
        try
        {
            var l = Layout.Contiguous([host.Length]);
            return host.DType switch
            {
                DType.Float32 => DeviceCopy<float>(host, l),
                DType.Float64 => DeviceCopy<double>(host, l),
                DType.Int32 => DeviceCopy<int>(host, l),
                _ => DeviceCopy<long>(host, l),
            };
        }
        finally { host.Release(); }
    }

    Storage DeviceCopy<T>(Storage host, Layout l) where T : unmanaged
    {
        var a = new T[host.Length];
        BackendRegistry.Cpu.Download<T>(new(host, l), a);
        return Upload<T>(a);
    }

    /// <summary>Runs <paramref name="cpu"/> on host copies of <paramref name="inputs"/> and uploads its result.</summary>
    internal Storage OnHost(Storage[] inputs, Func<IBackend, Storage[], Storage> cpu)
    {
        var host = inputs.Select(ToHost).ToArray();
        try { return ToDevice(cpu(BackendRegistry.Cpu, host)); }
        finally { foreach (var h in host) h.Release(); }
    }
}
