namespace MtlMoe.Engine;

/// <summary>Kind of compute device.</summary>
public enum DeviceType
{
    /// <summary>Host CPU (the reference backend).</summary>
    Cpu,
    /// <summary>NVIDIA GPU through CUDA.</summary>
    Cuda,
}

/// <summary>A device a tensor lives on: the CPU, or CUDA device N.</summary>
public readonly record struct Device(DeviceType Type, int Index)
{
    /// <summary>The host CPU.</summary>
    public static Device Cpu => new(DeviceType.Cpu, 0);

    /// <summary>CUDA device <paramref name="index"/>.</summary>
    public static Device Cuda(int index = 0) => new(DeviceType.Cuda, index);

    /// <summary>"cpu" or "cuda:N".</summary>
    public override string ToString() => Type == DeviceType.Cpu ? "cpu" : $"cuda:{Index}";

    /// <summary>Parses "cpu", "cuda" or "cuda:N".</summary>
    public static Device Parse(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return Cpu;
        if (t == "cuda") return Cuda(0);
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t.AsSpan(5), out var i) && i >= 0) return Cuda(i);
        throw new ArgumentException($"unknown device '{text}': expected cpu, cuda or cuda:N");
    }
}

/// <summary>Thrown when a device is requested whose backend is not usable on this machine.</summary>
public sealed class DeviceUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
