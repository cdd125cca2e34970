using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MtlMoe.Engine;

/// <summary>
/// Bulk float32 ↔ bfloat16 conversion. The vector paths (512-bit where AVX-512 is present, else 256-bit with AVX2,
/// else scalar) compute exactly <see cref="BFloat16.FromFloat"/>'s integer formula lane by lane, so every path gives
/// the same bits; the tail runs the scalar formula.
/// </summary>
public static class BFloat16Convert
{
    /// <summary>Which implementation a call uses (tests pin one to compare it with the scalar path).</summary>
    internal enum Path { Auto, Scalar, V256, V512 }

    /// <summary>dst[i] = round-to-nearest-even(src[i]); the spans must have equal lengths.</summary>
    public static void FromFloat(ReadOnlySpan<float> src, Span<BFloat16> dst) => FromFloat(src, dst, Path.Auto);

    /// <summary>dst[i] = src[i] widened exactly; the spans must have equal lengths.</summary>
    public static void ToFloat(ReadOnlySpan<BFloat16> src, Span<float> dst) => ToFloat(src, dst, Path.Auto);

    /// <summary>A new array of the rounded values.</summary>
    public static BFloat16[] FromFloat(ReadOnlySpan<float> src)
    {
        var dst = new BFloat16[src.Length];
        FromFloat(src, dst);
        return dst;
    }

    /// <summary>A new array of the widened values.</summary>
    public static float[] ToFloat(ReadOnlySpan<BFloat16> src)
    {
        var dst = new float[src.Length];
        ToFloat(src, dst);
        return dst;
    }

    private static Path Resolve(Path path) => path != Path.Auto ? path
        : Vector512.IsHardwareAccelerated ? Path.V512 : Vector256.IsHardwareAccelerated ? Path.V256 : Path.Scalar;

    internal static void FromFloat(ReadOnlySpan<float> src, Span<BFloat16> dst, Path path)
    {
        if (src.Length != dst.Length) throw new ArgumentException($"bf16 conversion: {src.Length} floats into {dst.Length} bfloat16 slots");
        var u = MemoryMarshal.Cast<float, uint>(src);
        var o = MemoryMarshal.Cast<BFloat16, ushort>(dst);
        int i = Resolve(path) switch
        {
            Path.V512 => Round512(u, o),
            Path.V256 => Round256(u, o),
            _ => 0,
        };
        for (; i < u.Length; i++) o[i] = BFloat16.RoundBits(u[i]);
    }

    internal static void ToFloat(ReadOnlySpan<BFloat16> src, Span<float> dst, Path path)
    {
        if (src.Length != dst.Length) throw new ArgumentException($"bf16 conversion: {src.Length} bfloat16 values into {dst.Length} float slots");
        var s = MemoryMarshal.Cast<BFloat16, ushort>(src);
        var o = MemoryMarshal.Cast<float, uint>(dst);
        int i = Resolve(path) switch
        {
            Path.V512 => Widen512(s, o),
            Path.V256 => Widen256(s, o),
            _ => 0,
        };
        for (; i < s.Length; i++) o[i] = (uint)s[i] << 16;
    }

    // Two vectors of uint in, one vector of ushort out: the same steps as BFloat16.RoundBits on every lane.
    private static int Round512(ReadOnlySpan<uint> u, Span<ushort> o)
    {
        var bias = Vector512.Create(0x7FFFu); var one = Vector512.Create(1u);
        var abs = Vector512.Create(0x7FFF_FFFFu); var inf = Vector512.Create(0x7F80_0000u); var quiet = Vector512.Create(0x0040u);
        int i = 0, step = Vector512<ushort>.Count;
        for (; i + step <= u.Length; i += step)
        {
            var lo = Round(Vector512.Create(u.Slice(i, step / 2)), bias, one, abs, inf, quiet);
            var hi = Round(Vector512.Create(u.Slice(i + step / 2, step / 2)), bias, one, abs, inf, quiet);
            Vector512.Narrow(lo, hi).CopyTo(o.Slice(i, step));
        }
        return i;

        static Vector512<uint> Round(Vector512<uint> v, Vector512<uint> bias, Vector512<uint> one, Vector512<uint> abs, Vector512<uint> inf, Vector512<uint> quiet)
        {
            var top = Vector512.ShiftRightLogical(v, 16);
            var rounded = Vector512.ShiftRightLogical(v + bias + (top & one), 16);
            var nan = Vector512.GreaterThan(v & abs, inf);
            return Vector512.ConditionalSelect(nan, top | quiet, rounded);
        }
    }

    private static int Round256(ReadOnlySpan<uint> u, Span<ushort> o)
    {
        var bias = Vector256.Create(0x7FFFu); var one = Vector256.Create(1u);
        var abs = Vector256.Create(0x7FFF_FFFFu); var inf = Vector256.Create(0x7F80_0000u); var quiet = Vector256.Create(0x0040u);
        int i = 0, step = Vector256<ushort>.Count;
        for (; i + step <= u.Length; i += step)
        {
            var lo = Round(Vector256.Create(u.Slice(i, step / 2)), bias, one, abs, inf, quiet);
            var hi = Round(Vector256.Create(u.Slice(i + step / 2, step / 2)), bias, one, abs, inf, quiet);
            Vector256.Narrow(lo, hi).CopyTo(o.Slice(i, step));
        }
        return i;

        static Vector256<uint> Round(Vector256<uint> v, Vector256<uint> bias, Vector256<uint> one, Vector256<uint> abs, Vector256<uint> inf, Vector256<uint> quiet)
        {
            var top = Vector256.ShiftRightLogical(v, 16);
            var rounded = Vector256.ShiftRightLogical(v + bias + (top & one), 16);
            var nan = Vector256.GreaterThan(v & abs, inf);
            return Vector256.ConditionalSelect(nan, top | quiet, rounded);
        }
    }

    private static int Widen512(ReadOnlySpan<ushort> s, Span<uint> o)
    {
        int i = 0, step = Vector512<ushort>.Count;
        for (; i + step <= s.Length; i += step)
        {
            var (lo, hi) = Vector512.Widen(Vector512.Create(s.Slice(i, step)));
            Vector512.ShiftLeft(lo, 16).CopyTo(o.Slice(i, step / 2));
            Vector512.ShiftLeft(hi, 16).CopyTo(o.Slice(i + step / 2, step / 2));
        }
        return i;
    }

    private static int Widen256(ReadOnlySpan<ushort> s, Span<uint> o)
    {
        int i = 0, step = Vector256<ushort>.Count;
        for (; i + step <= s.Length; i += step)
        {
            var (lo, hi) = Vector256.Widen(Vector256.Create(s.Slice(i, step)));
            Vector256.ShiftLeft(lo, 16).CopyTo(o.Slice(i, step / 2));
            Vector256.ShiftLeft(hi, 16).CopyTo(o.Slice(i + step / 2, step / 2));
        }
        return i;
    }
}
