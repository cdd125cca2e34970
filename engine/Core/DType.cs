namespace MtlMoe.Engine;

/// <summary>Element type of a tensor.</summary>
public enum DType
{
    /// <summary>32-bit IEEE float: the training type.</summary>
    Float32,
    /// <summary>64-bit IEEE float: CPU only, used by gradient checks.</summary>
    Float64,
    /// <summary>32-bit signed integer (indices).</summary>
    Int32,
    /// <summary>64-bit signed integer (labels, indices).</summary>
    Int64,
    /// <summary>
    /// bfloat16 (<see cref="BFloat16"/>): float32's range in 2 bytes, for activations under autocast; kernels compute
    /// in float32 and round once on store. Master weights and optimizer state stay float32.
    /// </summary>
    BFloat16,
}

/// <summary>Facts about <see cref="DType"/> values.</summary>
public static class DTypeInfo
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        DType.Float64 => 8,
        DType.Int32 => 4,
        DType.Int64 => 8,
        DType.BFloat16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>True for the floating-point types: Float32, Float64 and BFloat16.</summary>
    public static bool IsFloat(this DType dtype) => dtype is DType.Float32 or DType.Float64 or DType.BFloat16;

    /// <summary>The DType matching a CLR element type.</summary>
    public static DType Of<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DType.Float32;
        if (typeof(T) == typeof(double)) return DType.Float64;
        if (typeof(T) == typeof(int)) return DType.Int32;
        if (typeof(T) == typeof(long)) return DType.Int64;
        if (typeof(T) == typeof(BFloat16)) return DType.BFloat16;
        throw new NotSupportedException($"element type {typeof(T).Name} has no DType");
    }

    /// <summary>Lower-case name used in messages and safetensors headers.</summary>
    public static string Name(this DType dtype) => dtype switch
    {
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        DType.Int32 => "int32",
        DType.Int64 => "int64",
        DType.BFloat16 => "bf16",
        _ => dtype.ToString(),
    };

    /// <summary>
    /// The DType a name stands for, case-insensitive: float32/f32/fp32, float64/f64/fp64, int32/i32, int64/i64,
    /// bf16/bfloat16; null for anything else.
    /// </summary>
    public static DType? TryParse(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "float32" or "f32" or "fp32" or "float" => DType.Float32,
        "float64" or "f64" or "fp64" or "double" => DType.Float64,
        "int32" or "i32" => DType.Int32,
        "int64" or "i64" => DType.Int64,
        "bf16" or "bfloat16" => DType.BFloat16,
        _ => null,
    };
}
