using MtlMoe.Engine;

namespace MtlMoe.Tests.Core;

/// <summary>
/// bfloat16 conversions against references written without bit tricks: widening from the sign, exponent and
/// mantissa fields by <see cref="Math.ScaleB"/>; narrowing by scaling the exact double value to the bf16 quantum of
/// its binade and rounding with <see cref="MidpointRounding.ToEven"/>.
/// </summary>
public class BFloat16Tests
{
    // The value of bf16 bits from the fields (NaN patterns excluded by the caller).
    static double WidenReference(ushort bits)
    {
        int sign = bits >> 15, exp = (bits >> 7) & 0xFF, man = bits & 0x7F;
        double mag = exp == 0xFF ? double.PositiveInfinity
            : exp == 0 ? Math.ScaleB(man, -126 - 7)
            : Math.ScaleB(128 + man, exp - 127 - 7);
        return sign == 1 ? -mag : mag;
    }

    // Round-to-nearest-even of a finite or infinite float to bf16, by arithmetic on doubles: the quantum of the
    // binade (never below the subnormal quantum 2^−133), n = |x|/quantum exact in double, n rounded to even;
    // a result of 2^128 or more is Inf.
    static ushort NarrowReference(float f)
    {
        double d = f;
        if (double.IsInfinity(d)) return d > 0 ? (ushort)0x7F80 : (ushort)0xFF80;
        double a = Math.Abs(d);
        int e = a == 0 ? -126 : Math.Max(Math.ILogB(a), -126);
        double q = Math.ScaleB(1.0, e - 7);
        double r = Math.Round(a / q, MidpointRounding.ToEven) * q;
        float rf = r >= Math.ScaleB(1.0, 128) ? float.PositiveInfinity : (float)r;
        uint u = BitConverter.SingleToUInt32Bits(rf);
        Assert.That(u & 0xFFFF, Is.Zero, $"reference produced a non-bf16 value for {f:R}");
        ushort bits = (ushort)(u >> 16);
        return double.IsNegative(d) ? (ushort)(bits | 0x8000) : bits;
    }

    static bool IsNaNBits(ushort b) => (b & 0x7FFF) > 0x7F80;

    [Test]
    public void EveryBf16ValueWidensExactlyAndRoundTrips()
    {
        int nans = 0;
        for (int b = 0; b < 65536; b++)
        {
            var v = BFloat16.FromBits((ushort)b);
            float f = v.ToFloat();
            var back = BFloat16.FromFloat(f);
            if (IsNaNBits((ushort)b))
            {
                nans++;
                Assert.That(float.IsNaN(f) && v.IsNaN, $"0x{b:X4} must widen to NaN");
                Assert.That(back.Bits, Is.EqualTo((ushort)(b | 0x0040)), $"NaN 0x{b:X4} must come back quiet with its sign and payload");
                continue;
            }
            Assert.That((double)f, Is.EqualTo(WidenReference((ushort)b)), $"widen 0x{b:X4}");
            if (back.Bits != b) Assert.Fail($"0x{b:X4} → {f:R} → 0x{back.Bits:X4}");
        }
        Assert.That(nans, Is.EqualTo(2 * 127), "254 NaN patterns (two signs × 127 nonzero mantissas)");
    }

    // Every high half, with the low halves at and around the rounding boundaries (0x8000 is the tie), plus random ones.
    [Test]
    public void NarrowingMatchesTheDoubleReferenceAtEveryHighHalf()
    {
        ushort[] lows = [0x0000, 0x0001, 0x3FFF, 0x7FFE, 0x7FFF, 0x8000, 0x8001, 0xBFFF, 0xFFFE, 0xFFFF];
        var rng = new Random(19);
        long checkedCount = 0;
        for (uint hi = 0; hi < 65536; hi++)
        {
            for (int j = 0; j < lows.Length + 2; j++)
            {
                uint low = j < lows.Length ? lows[j] : (uint)rng.Next(0, 65536);
                uint u = (hi << 16) | low;
                float f = BitConverter.UInt32BitsToSingle(u);
                ushort got = BFloat16.FromFloat(f).Bits;
                if (float.IsNaN(f))
                {
                    // NaN: stays NaN, keeps its sign and upper payload, gains the quiet bit.
                    if (!IsNaNBits(got) || (got & 0x8000) != (u >> 16 & 0x8000) || (got & 0x3F) != ((u >> 16) & 0x3F) || (got & 0x40) == 0)
                        Assert.Fail($"NaN 0x{u:X8} → 0x{got:X4}");
                    checkedCount++;
                    continue;
                }
                ushort want = NarrowReference(f);
                if (got != want) Assert.Fail($"0x{u:X8} ({f:R}) → 0x{got:X4}, reference 0x{want:X4}");
                checkedCount++;
            }
        }
        Assert.That(checkedCount, Is.EqualTo(65536L * 12));
    }

    [TestCase(0x7F7FFFFFu, (ushort)0x7F80, TestName = "largest float overflows to +Inf")]
    [TestCase(0xFF7FFFFFu, (ushort)0xFF80, TestName = "most negative float overflows to -Inf")]
    [TestCase(0x7F7F7FFFu, (ushort)0x7F7F, TestName = "just below the top midpoint stays at the largest bf16")]
    [TestCase(0x7F7F8000u, (ushort)0x7F80, TestName = "top midpoint ties to even: Inf")]
    [TestCase(0x3F808000u, (ushort)0x3F80, TestName = "tie above 1 goes down to the even 1")]
    [TestCase(0x3F818000u, (ushort)0x3F82, TestName = "tie above an odd mantissa goes up")]
    [TestCase(0x00000001u, (ushort)0x0000, TestName = "smallest float subnormal rounds to +0")]
    [TestCase(0x80000001u, (ushort)0x8000, TestName = "smallest negative subnormal rounds to -0")]
    [TestCase(0x00008000u, (ushort)0x0000, TestName = "subnormal tie to even zero")]
    [TestCase(0x00018000u, (ushort)0x0002, TestName = "subnormal tie to even two")]
    [TestCase(0x007FFFFFu, (ushort)0x0080, TestName = "largest subnormal rounds up to the smallest normal")]
    [TestCase(0x7F800000u, (ushort)0x7F80, TestName = "+Inf")]
    [TestCase(0xFF800000u, (ushort)0xFF80, TestName = "-Inf")]
    [TestCase(0x7F800001u, (ushort)0x7FC0, TestName = "NaN with a low payload stays NaN (not Inf)")]
    [TestCase(0xFF800001u, (ushort)0xFFC0, TestName = "negative NaN keeps its sign")]
    [TestCase(0x7FA00000u, (ushort)0x7FE0, TestName = "signalling NaN becomes quiet and keeps its payload")]
    [TestCase(0x7FC00000u, (ushort)0x7FC0, TestName = "canonical NaN")]
    public void SpecialValues(uint floatBits, ushort want)
    {
        float f = BitConverter.UInt32BitsToSingle(floatBits);
        Assert.That(BFloat16.FromFloat(f).Bits, Is.EqualTo(want), $"0x{floatBits:X8}");
        var one = new float[1] { f };
        var dst = new BFloat16[1];
        foreach (var path in new[] { BFloat16Convert.Path.Scalar, BFloat16Convert.Path.V256, BFloat16Convert.Path.V512 })
        {
            // The special value in a full vector (position 5 of 37) so the vector body, not the scalar tail, sees it.
            var src = new float[37]; src[5] = f;
            var o = new BFloat16[37];
            BFloat16Convert.FromFloat(src, o, path);
            Assert.That(o[5].Bits, Is.EqualTo(want), $"{path} 0x{floatBits:X8}");
        }
        BFloat16Convert.FromFloat(one, dst);
        Assert.That(dst[0].Bits, Is.EqualTo(want));
    }

    static float[] RandomFloats(int n, Random rng)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            uint u = (uint)rng.NextInt64(0, 1L << 32);
            // Every 5th value a "normal-looking" float whose low half sits at the tie, to exercise ties in the vector body.
            if (i % 5 == 0) u = (u & 0xFFFF0000u) | 0x8000u;
            a[i] = BitConverter.UInt32BitsToSingle(u);
        }
        return a;
    }

    [Test]
    public void VectorPathsEqualTheScalarPathOnOddLengths()
    {
        var rng = new Random(7);
        foreach (int n in new[] { 0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 1001, 4099 })
        {
            var src = RandomFloats(n, rng);
            var scalar = new BFloat16[n];
            BFloat16Convert.FromFloat(src, scalar, BFloat16Convert.Path.Scalar);
            for (int i = 0; i < n; i++) Assert.That(scalar[i].Bits, Is.EqualTo(BFloat16.FromFloat(src[i]).Bits));
            foreach (var path in new[] { BFloat16Convert.Path.V256, BFloat16Convert.Path.V512, BFloat16Convert.Path.Auto })
            {
                var v = new BFloat16[n];
                BFloat16Convert.FromFloat(src, v, path);
                for (int i = 0; i < n; i++)
                    if (v[i].Bits != scalar[i].Bits) Assert.Fail($"{path} n={n} i={i}: 0x{v[i].Bits:X4} vs scalar 0x{scalar[i].Bits:X4}");

                var wide = new float[n]; var wideScalar = new float[n];
                BFloat16Convert.ToFloat(v, wide, path);
                BFloat16Convert.ToFloat(v, wideScalar, BFloat16Convert.Path.Scalar);
                for (int i = 0; i < n; i++)
                {
                    uint a = BitConverter.SingleToUInt32Bits(wide[i]), b = BitConverter.SingleToUInt32Bits(wideScalar[i]);
                    if (a != b || b != (uint)v[i].Bits << 16) Assert.Fail($"widen {path} n={n} i={i}: 0x{a:X8} vs 0x{b:X8}");
                }
            }
        }
    }

    [Test]
    public void MismatchedSpanLengthsAreRefused()
    {
        var ex = Assert.Throws<ArgumentException>(() => BFloat16Convert.FromFloat(new float[3], new BFloat16[2]));
        Assert.That(ex!.Message, Does.Contain("3 floats into 2"));
        Assert.Throws<ArgumentException>(() => BFloat16Convert.ToFloat(new BFloat16[3], new float[4]));
    }

    [Test]
    public void EqualityAndOrderingFollowFloat()
    {
        var nan = BFloat16.NaN;
        var otherNan = BFloat16.FromBits(nan.Bits);   // the same bits, a different variable: NaN != NaN by IEEE rules
        Assert.That(nan == otherNan, Is.False);
        Assert.That(nan.Equals(nan), Is.True);
        Assert.That(BFloat16.FromBits(0x8000) == BFloat16.Zero, Is.True);
        Assert.That(BFloat16.One > BFloat16.Zero && BFloat16.MinValue < BFloat16.MaxValue, Is.True);
        Assert.That((float)BFloat16.MaxValue, Is.EqualTo(3.3895313892515355e38f));
        Assert.That((float)BFloat16.Epsilon, Is.EqualTo((float)Math.ScaleB(1.0, -133)));
        Assert.That(BFloat16.Epsilon.IsSubnormal && !BFloat16.MinNormal.IsSubnormal, Is.True);
        Assert.That(BFloat16.PositiveInfinity.IsInfinity && !BFloat16.PositiveInfinity.IsFinite, Is.True);
        Assert.That(((BFloat16)1.00390625f).Bits, Is.EqualTo((ushort)0x3F80), "1 + 2^-8 is a tie: rounds to the even 1");
        Assert.That(((BFloat16)3.14159265f).ToString(), Is.EqualTo("3.140625"));
    }

    [Test]
    public void DTypeFacts()
    {
        Assert.That(DType.BFloat16.SizeOf(), Is.EqualTo(2));
        Assert.That(DType.BFloat16.Name(), Is.EqualTo("bf16"));
        Assert.That(DType.BFloat16.IsFloat(), Is.True);
        Assert.That(DTypeInfo.Of<BFloat16>(), Is.EqualTo(DType.BFloat16));
        Assert.That(System.Runtime.CompilerServices.Unsafe.SizeOf<BFloat16>(), Is.EqualTo(2));
        Assert.That(DTypeInfo.TryParse("BF16"), Is.EqualTo(DType.BFloat16));
        Assert.That(DTypeInfo.TryParse("bfloat16"), Is.EqualTo(DType.BFloat16));
        Assert.That(DTypeInfo.TryParse("fp32"), Is.EqualTo(DType.Float32));
        Assert.That(DTypeInfo.TryParse("half"), Is.Null);
        Assert.That(DTypeInfo.TryParse(null), Is.Null);
    }
}
