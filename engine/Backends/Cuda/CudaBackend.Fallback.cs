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
            DType.Int64 => HostCopy<long>(c),
            DType.BFloat16 => HostCopy<BFloat16>(c),
            _ => throw new NotSupportedException($"to_host: dtype {s.DType.Name()} is not supported"),
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
                DType.Int64 => DeviceCopy<long>(host, l),
                DType.BFloat16 => DeviceCopy<BFloat16>(host, l),
                _ => throw new NotSupportedException($"to_device: dtype {host.DType.Name()} is not supported"),
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

    /// <summary>
    /// A bf16 primitive without a bf16 kernel, run as its CPU twin is defined: <paramref name="f32"/> on float32 copies of
    /// the bf16 operands (exact), the result rounded once to bf16 (float32 results kept when <paramref name="round"/> is false).
    /// </summary>
    internal Storage ViaFloat32(StorageView[] operands, Func<StorageView[], Storage> f32, bool round = true)
    {
        var wide = new Storage?[operands.Length];
        try
        {
            var views = new StorageView[operands.Length];
            for (int i = 0; i < operands.Length; i++)
            {
                if (operands[i].DType != DType.BFloat16) { views[i] = operands[i]; continue; }
                wide[i] = Cast(operands[i], DType.Float32);
                views[i] = StorageView.Dense(wide[i]!, operands[i].Shape);
            }
            var r = f32(views);
            if (!round || r.DType != DType.Float32) return r;
            try { return Cast(StorageView.Dense(r, [r.Length]), DType.BFloat16); }
            finally { r.Release(); }
        }
        finally { foreach (var w in wide) w?.Release(); }
    }

    /// <summary>Runs <paramref name="cpu"/> on host copies of <paramref name="inputs"/> and uploads its result.</summary>
    internal Storage OnHost(Storage[] inputs, Func<IBackend, Storage[], Storage> cpu)
    {
        var host = inputs.Select(ToHost).ToArray();
        try { return ToDevice(cpu(BackendRegistry.Cpu, host)); }
        finally { foreach (var h in host) h.Release(); }
    }
}
