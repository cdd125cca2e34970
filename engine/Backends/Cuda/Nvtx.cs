using System.Runtime.InteropServices;
using System.Text;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// NVTX ranges for Nsight Systems / Nsight Compute timelines, through <c>libnvToolsExt.so.1</c>
/// (nvtxRangePushA / nvtxRangePop) when the library is present; a no-op otherwise. Never throws.
/// </summary>
public static unsafe class Nvtx
{
    static readonly delegate* unmanaged<byte*, int> Push;
    static readonly delegate* unmanaged<int> Pop;

    static Nvtx()
    {
        foreach (var name in new[] { "libnvToolsExt.so.1", "libnvToolsExt.so" })
        {
            if (!NativeLibrary.TryLoad(name, out var lib)) continue;
            if (NativeLibrary.TryGetExport(lib, "nvtxRangePushA", out var push) && NativeLibrary.TryGetExport(lib, "nvtxRangePop", out var pop))
            {
                Push = (delegate* unmanaged<byte*, int>)push;
                Pop = (delegate* unmanaged<int>)pop;
                return;
            }
        }
    }

    /// <summary>True when libnvToolsExt was found (ranges are recorded).</summary>
    public static bool Enabled => Push != null;

    /// <summary>Opens a range named <paramref name="name"/>; dispose the result to close it.</summary>
    public static RangeScope Range(string name)
    {
        if (Push == null) return default;
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = bytes) Push(p);
        return new RangeScope(true);
    }

    /// <summary>Closes the range <see cref="Range"/> opened (nothing when NVTX is absent).</summary>
    public readonly struct RangeScope(bool open) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose()
        {
            if (open && Pop != null) Pop();
        }
    }
}
