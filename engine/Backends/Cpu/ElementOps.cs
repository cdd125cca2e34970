using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>A unary element function with scalar parameters a and b; the JIT specialises kernels per struct.</summary>
internal interface IUnaryFn<T> where T : unmanaged
{
    static abstract T Apply(T x, T a, T b);
    static virtual bool Vectorized => false;
    static virtual Vector<T> Apply(Vector<T> x, Vector<T> a, Vector<T> b) => throw new NotSupportedException();
}

/// <summary>A binary element function.</summary>
internal interface IBinaryFn<T> where T : unmanaged
{
    static abstract T Apply(T x, T y);
    static virtual bool Vectorized => false;
    static virtual Vector<T> Apply(Vector<T> x, Vector<T> y) => throw new NotSupportedException();
}

internal static class F<T> where T : INumber<T>
{
    public static T Bool(bool c) => c ? T.One : T.Zero;
}

// ---------- arithmetic unary (any number type) ----------
internal struct NegFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T a, T b) => -x;
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> a, Vector<T> b) => -x;
}
internal struct AbsFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T a, T b) => T.Abs(x);
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> a, Vector<T> b) => Vector.Abs(x);
}
internal struct SignFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T a, T b) => x > T.Zero ? T.One : x < T.Zero ? -T.One : T.Zero;
}
internal struct AddScalarFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T a, T b) => x + a;
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> a, Vector<T> b) => x + a;
}
internal struct MulScalarFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T a, T b) => x * a;
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> a, Vector<T> b) => x * a;
}
internal struct RDivScalarFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T a, T b) => a / x;
}
internal struct ClampFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T a, T b) => x < a ? a : x > b ? b : x;
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> a, Vector<T> b) => Vector.Min(Vector.Max(x, a), b);
}
internal struct ReluFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T a, T b) => x > T.Zero ? x : T.Zero;
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> a, Vector<T> b) => Vector.Max(x, Vector<T>.Zero);
}
internal struct GtScalarFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T a, T b) => F<T>.Bool(x > a); }
internal struct LtScalarFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T a, T b) => F<T>.Bool(x < a); }
internal struct GeScalarFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T a, T b) => F<T>.Bool(x >= a); }
internal struct LeScalarFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T a, T b) => F<T>.Bool(x <= a); }
internal struct EqScalarFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T a, T b) => F<T>.Bool(x == a); }
internal struct InRangeFn<T> : IUnaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T a, T b) => F<T>.Bool(x >= a && x <= b); }

// ---------- float-only unary ----------
internal struct ExpFn<T> : IUnaryFn<T> where T : unmanaged, IFloatingPointIeee754<T> { public static T Apply(T x, T a, T b) => T.Exp(x); }
internal struct LogFn<T> : IUnaryFn<T> where T : unmanaged, IFloatingPointIeee754<T> { public static T Apply(T x, T a, T b) => T.Log(x); }
internal struct SqrtFn<T> : IUnaryFn<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T x, T a, T b) => T.Sqrt(x);
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> a, Vector<T> b) => Vector.SquareRoot(x);
}
internal struct SigmoidFn<T> : IUnaryFn<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T x, T a, T b)
    {
        // Stable on both tails: never exponentiates a large positive number.
        if (x >= T.Zero) return T.One / (T.One + T.Exp(-x));
        T e = T.Exp(x);
        return e / (T.One + e);
    }
}
internal struct TanhFn<T> : IUnaryFn<T> where T : unmanaged, IFloatingPointIeee754<T> { public static T Apply(T x, T a, T b) => T.Tanh(x); }
internal struct SoftplusFn<T> : IUnaryFn<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    // log(1 + e^x) = max(x, 0) + log1p(e^-|x|), stable for any x.
    public static T Apply(T x, T a, T b) => T.Max(x, T.Zero) + T.LogP1(T.Exp(-T.Abs(x)));
}
internal struct ErfFn<T> : IUnaryFn<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T x, T a, T b) => T.CreateTruncating(SpecialFunctions.Erf(double.CreateTruncating(x)));
}
internal struct NormCdfFn<T> : IUnaryFn<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T x, T a, T b) => T.CreateTruncating(SpecialFunctions.NormCdf(double.CreateTruncating(x)));
}
internal struct PowScalarFn<T> : IUnaryFn<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T x, T a, T b) => a == T.CreateTruncating(2) ? x * x : a == T.One ? x : T.Pow(x, a);
}

// ---------- binary ----------
internal struct AddFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T y) => x + y;
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> y) => x + y;
}
internal struct SubFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T y) => x - y;
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> y) => x - y;
}
internal struct MulFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T y) => x * y;
    public static bool Vectorized => true;
    public static Vector<T> Apply(Vector<T> x, Vector<T> y) => x * y;
}
internal struct DivFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T y) => x / y;
    public static bool Vectorized => typeof(T) == typeof(float) || typeof(T) == typeof(double);
    public static Vector<T> Apply(Vector<T> x, Vector<T> y) => x / y;
}
internal struct MaxFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T y) => x >= y ? x : y;
}
internal struct MinFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T>
{
    public static T Apply(T x, T y) => x <= y ? x : y;
}
internal struct PowFn<T> : IBinaryFn<T> where T : unmanaged, IFloatingPointIeee754<T> { public static T Apply(T x, T y) => T.Pow(x, y); }
internal struct GtFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T y) => F<T>.Bool(x > y); }
internal struct LtFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T y) => F<T>.Bool(x < y); }
internal struct GeFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T y) => F<T>.Bool(x >= y); }
internal struct LeFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T y) => F<T>.Bool(x <= y); }
internal struct EqFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T y) => F<T>.Bool(x == y); }
internal struct NeFn<T> : IBinaryFn<T> where T : unmanaged, INumber<T> { public static T Apply(T x, T y) => F<T>.Bool(x != y); }
