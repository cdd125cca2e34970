using System.Reflection;
using System.Runtime.CompilerServices;

namespace MtlMoe.Tests.Architecture;

/// <summary>
/// No mutable static switch in the engine or the model: settings belong to a backend's options (CpuBackendOptions,
/// CudaBackendOptions) or to the object that uses them. Every writable static field or property of MtlMoe.Engine and
/// MtlMoe.Model must be on the short list below, each with the reason it is process or thread state rather than a
/// setting. Constants, readonly fields and get-only properties are fine; compiler-generated lambda caches are skipped.
/// </summary>
public class NoMutableStaticsTests
{
    private static readonly Dictionary<string, string> Allowed = new(StringComparer.Ordinal)
    {
        ["MtlMoe.Engine.DisposeScope._current"] = "[ThreadStatic] the thread's stack of dispose scopes (TorchSharp's design)",
        ["MtlMoe.Engine.Autograd.GradMode._disabled"] = "[ThreadStatic] the thread's no-grad scope",
        ["MtlMoe.Engine.Amp.Autocast._stack"] = "[ThreadStatic] the thread's stack of autocast scopes (like the no-grad scope)",
        ["MtlMoe.Engine.MemoryStats._liveTensors"] = "process-wide live-tensor counter (leak accounting, not a setting)",
        ["MtlMoe.Engine.MemoryStats._liveBytes"] = "process-wide live-byte counter",
        ["MtlMoe.Engine.MemoryStats._liveStorages"] = "process-wide live-storage counter",
        ["MtlMoe.Engine.Autograd.OpProfile._mark"] = "the op profile's running timestamp (the profile is on only with MTLMOE_PROFILE=1)",
        ["MtlMoe.Engine.Autograd.OpProfile._hooked"] = "whether the profile's exit printer is hooked (set once)",
        ["MtlMoe.Engine.Backends.Cpu.CpuArrayPool._pooledBytes"] = "bytes held by the CPU storage pool (accounting)",
        ["MtlMoe.Engine.Backends.Cpu.WorkerTeam._helpers"] = "the process's helper threads (a resource, grown on demand)",
        ["MtlMoe.Engine.Backends.Cpu.WorkerTeam._job"] = "the parallel region the helpers are working on now",
        ["MtlMoe.Engine.Backends.Cpu.WorkerTeam._inTeam"] = "[ThreadStatic] whether this thread is inside a region (nested regions run inline)",
        ["MtlMoe.Engine.Backends.Cpu.Gemm.GemmDriver`2._aBuf"] = "[ThreadStatic] the thread's GEMM packing buffer (a cache)",
        ["MtlMoe.Engine.Backends.Cpu.Gemm.GemmDriver`2._bBuf"] = "[ThreadStatic] the thread's GEMM packing buffer (a cache)",
        ["MtlMoe.Engine.Backends.Cpu.Conv.Shared.ImplicitGemmKernel._aBuf"] = "[ThreadStatic] the thread's packed-A buffer (a cache)",
        ["MtlMoe.Engine.Backends.Cpu.Conv.ImplicitGemmStride2BackwardData._phaseA"] = "[ThreadStatic] the thread's packed-A buffer (a cache)",
        ["MtlMoe.Engine.Backends.Cpu.Conv.PointwiseStride2Gemm._pwA"] = "[ThreadStatic] the thread's packing buffer (a cache)",
        ["MtlMoe.Engine.Backends.Cpu.Conv.PointwiseStride2Gemm._pwB"] = "[ThreadStatic] the thread's packing buffer (a cache)",
        ["MtlMoe.Engine.Backends.Cpu.Conv.BlockedBackwardWeights._acc"] = "[ThreadStatic] the thread's accumulator tile (a cache)",
        ["MtlMoe.Engine.Backends.Cpu.Conv.Shared.Im2ColSameVec._tables"] = "[ThreadStatic] the thread's last mask tables (a cache)",
        ["MtlMoe.Engine.Backends.Cpu.Conv.Shared.Im2ColSameVec._keys"] = "[ThreadStatic] what those mask tables were built for",
        ["MtlMoe.Engine.Backends.Cpu.Conv.Shared.Im2ColSameVec._next"] = "[ThreadStatic] the mask-table cache's next slot",
        ["MtlMoe.Engine.Backends.Cpu.Conv.Shared.Im2ColPacked+RowBuffer`1._row"] = "[ThreadStatic] the thread's unfold row buffer (a cache)",
        ["MtlMoe.Engine.Backends.Cuda.CudaContext._currentCtx"] = "[ThreadStatic] the CUDA context current on this thread (a cache of driver state)",
        ["MtlMoe.Engine.Backends.Cuda.Native.CudaLibraryResolver._registered"] = "whether the library resolver is registered (set once)",
    };

    private static readonly Assembly[] Assemblies = [typeof(MtlMoe.Engine.Tensor).Assembly, typeof(MtlMoe.Model.Backbone.ResNet).Assembly];

    private static bool CompilerGenerated(Type t)
    {
        for (var x = t; x is not null; x = x.DeclaringType)
            if (x.IsDefined(typeof(CompilerGeneratedAttribute), false)) return true;
        return false;
    }

    internal static List<string> MutableStatics(IEnumerable<Assembly> assemblies)
    {
        const BindingFlags Static = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        var found = new List<string>();
        foreach (var asm in assemblies)
            foreach (var t in asm.GetTypes().Where(t => !CompilerGenerated(t)))
            {
                foreach (var p in t.GetProperties(Static))
                    if (p.SetMethod is not null) found.Add($"{t.FullName}.{p.Name} (settable static property)");
                foreach (var f in t.GetFields(Static))
                {
                    if (f.IsLiteral || f.IsInitOnly || f.IsDefined(typeof(CompilerGeneratedAttribute), false)) continue;
                    found.Add($"{t.FullName}.{f.Name}");
                }
            }
        return found;
    }

    [Test]
    public void EveryWritableStaticIsOnTheAllowList()
    {
        var found = MutableStatics(Assemblies);
        var unexpected = found.Where(f => !Allowed.ContainsKey(f)).ToList();
        Assert.That(unexpected, Is.Empty, "mutable statics that are not on the allow-list: make them options of the object that uses them");
        Assert.That(Allowed.Keys.Where(k => !found.Contains(k)), Is.Empty, "allow-list entries that no longer exist (remove them)");
    }

    // The check sees what it must: a settable static property and a plain static field of a type made for this test.
    private static class Switches
    {
        public static bool Knob { get; set; }
        public static int Counter;
    }

    [Test]
    public void TheScanFindsSettableStaticsAndStaticFields()
    {
        var found = MutableStatics([typeof(NoMutableStaticsTests).Assembly]);
        Assert.That(found, Does.Contain($"{typeof(Switches).FullName}.Knob (settable static property)"));
        Assert.That(found, Does.Contain($"{typeof(Switches).FullName}.Counter"));
        Switches.Counter++; Switches.Knob = !Switches.Knob; // used, so the compiler keeps them as they are
    }
}
