using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MtlMoe.Engine;

/// <summary>
/// bfloat16: the upper 16 bits of an IEEE float32 (1 sign, 8 exponent, 7 mantissa bits) — float32's range with
/// about 3 significant decimal digits. Widening to float is exact (append 16 zero bits). Narrowing from float
/// rounds to nearest, ties to even, on the bit pattern: finite values that round past the largest bfloat16
/// become ±Inf, subnormals round like any other value, ±Inf stay ±Inf, and a NaN stays a NaN with its sign
/// and its upper payload bits, made quiet (so a payload held only in the dropped bits cannot turn into Inf).
/// The CUDA kernels (kernels/common.cuh, bf16_from_f32) use the same integer formula, so both sides round
/// every value to the same bits.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 2)]
public readonly struct BFloat16 : IEquatable<BFloat16>, IComparable<BFloat16>, IFormattable
{
    /// <summary>The raw bit pattern.</summary>
    public readonly ushort Bits;

    private BFloat16(ushort bits) { Bits = bits; }

    /// <summary>The value with bit pattern <paramref name="bits"/>.</summary>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>+0.</summary>
    public static BFloat16 Zero => new(0x0000);
    /// <summary>1.</summary>
    public static BFloat16 One => new(0x3F80);
    /// <summary>+∞.</summary>
    public static BFloat16 PositiveInfinity => new(0x7F80);
    /// <summary>−∞.</summary>
    public static BFloat16 NegativeInfinity => new(0xFF80);
    /// <summary>The canonical quiet NaN (0x7FC0).</summary>
    public static BFloat16 NaN => new(0x7FC0);
    /// <summary>Largest finite value, (2 − 2^−7)·2^127 ≈ 3.39e38.</summary>
    public static BFloat16 MaxValue => new(0x7F7F);
    /// <summary>Most negative finite value.</summary>
    public static BFloat16 MinValue => new(0xFF7F);
    /// <summary>Smallest positive normal value, 2^−126.</summary>
    public static BFloat16 MinNormal => new(0x0080);
    /// <summary>Smallest positive subnormal value, 2^−133.</summary>
    public static BFloat16 Epsilon => new(0x0001);

    /// <summary>The nearest bfloat16 (ties to even; see the type's summary for NaN and overflow).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static BFloat16 FromFloat(float value) => new(RoundBits(BitConverter.SingleToUInt32Bits(value)));

    /// <summary>The exact float32 value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float ToFloat() => BitConverter.UInt32BitsToSingle((uint)Bits << 16);

    /// <summary>
    /// The upper half of float32 bits <paramref name="u"/>, rounded to nearest even: add 0x7FFF plus the lowest kept
    /// bit, then truncate (a carry out of the mantissa steps the exponent, up to Inf). NaN: truncate and set the
    /// quiet bit (0x0040).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ushort RoundBits(uint u)
    {
        if ((u & 0x7FFF_FFFFu) > 0x7F80_0000u) return (ushort)((u >> 16) | 0x0040u);
        return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }

    /// <summary>Rounds a float to the nearest bfloat16.</summary>
    public static explicit operator BFloat16(float value) => FromFloat(value);

    /// <summary>Rounds a double to the nearest bfloat16 through float (double → float → bfloat16 can round twice).</summary>
    public static explicit operator BFloat16(double value) => FromFloat((float)value);

    /// <summary>Widens exactly.</summary>
    public static implicit operator float(BFloat16 value) => value.ToFloat();

    /// <summary>Widens exactly.</summary>
    public static implicit operator double(BFloat16 value) => value.ToFloat();

    /// <summary>True for any NaN pattern.</summary>
    public bool IsNaN => (Bits & 0x7FFF) > 0x7F80;
    /// <summary>True for ±∞.</summary>
    public bool IsInfinity => (Bits & 0x7FFF) == 0x7F80;
    /// <summary>True for neither NaN nor ±∞.</summary>
    public bool IsFinite => (Bits & 0x7F80) != 0x7F80;
    /// <summary>True for a nonzero value with a zero exponent field.</summary>
    public bool IsSubnormal => (Bits & 0x7F80) == 0 && (Bits & 0x007F) != 0;

    /// <summary>IEEE equality: NaN ≠ NaN, +0 = −0.</summary>
    public static bool operator ==(BFloat16 a, BFloat16 b) => a.ToFloat() == b.ToFloat();
    /// <summary>IEEE inequality.</summary>
    public static bool operator !=(BFloat16 a, BFloat16 b) => a.ToFloat() != b.ToFloat();
    /// <summary>IEEE ordering (false when either is NaN).</summary>
    public static bool operator <(BFloat16 a, BFloat16 b) => a.ToFloat() < b.ToFloat();
    /// <summary>IEEE ordering (false when either is NaN).</summary>
    public static bool operator >(BFloat16 a, BFloat16 b) => a.ToFloat() > b.ToFloat();
    /// <summary>IEEE ordering (false when either is NaN).</summary>
    public static bool operator <=(BFloat16 a, BFloat16 b) => a.ToFloat() <= b.ToFloat();
    /// <summary>IEEE ordering (false when either is NaN).</summary>
    public static bool operator >=(BFloat16 a, BFloat16 b) => a.ToFloat() >= b.ToFloat();

    /// <summary>Equality as <see cref="float.Equals(float)"/>: NaN equals NaN, +0 equals −0.</summary>
    public bool Equals(BFloat16 other) => ToFloat().Equals(other.ToFloat());
    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is BFloat16 b && Equals(b);
    /// <inheritdoc />
    public override int GetHashCode() => ToFloat().GetHashCode();
    /// <summary>Ordering as <see cref="float.CompareTo(float)"/> (NaN first).</summary>
    public int CompareTo(BFloat16 other) => ToFloat().CompareTo(other.ToFloat());

    /// <summary>The float value, invariant culture.</summary>
    public override string ToString() => ToFloat().ToString(CultureInfo.InvariantCulture);
    /// <inheritdoc />
    public string ToString(string? format, IFormatProvider? formatProvider) => ToFloat().ToString(format, formatProvider);
}
