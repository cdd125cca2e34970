using System.Numerics;
using System.Runtime.InteropServices;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// Vectorised per-plane sums and affine maps for the per-channel loops of batch-norm. The vector loops load through
/// refs after one length check (slicing a span per vector measured up to 2× slower in these memory-bound loops).
/// </summary>
internal static class ChannelVec
{
    private static bool Simd<T>() where T : unmanaged => Vector.IsHardwareAccelerated && Vector<T>.IsSupported;

    /// <summary>Σ a (lanes in T, total in double).</summary>
    public static double Sum<T>(ReadOnlySpan<T> a) where T : unmanaged, INumber<T>
    {
        int i = 0; var acc = Vector<T>.Zero; T tail = T.Zero;
        if (Simd<T>())
        {
            ref T ra = ref MemoryMarshal.GetReference(a);
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count) acc += Vector.LoadUnsafe(ref ra, (nuint)i);
        }
        for (; i < a.Length; i++) tail += a[i];
        return double.CreateTruncating(Vector.Sum(acc)) + double.CreateTruncating(tail);
    }

    /// <summary>Σ (a − m)².</summary>
    public static double SumSqDev<T>(ReadOnlySpan<T> a, T m) where T : unmanaged, INumber<T>
    {
        int i = 0; var acc = Vector<T>.Zero; var vm = new Vector<T>(m); T tail = T.Zero;
        if (Simd<T>())
        {
            ref T ra = ref MemoryMarshal.GetReference(a);
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count) { var d = Vector.LoadUnsafe(ref ra, (nuint)i) - vm; acc += d * d; }
        }
        for (; i < a.Length; i++) { T d = a[i] - m; tail += d * d; }
        return double.CreateTruncating(Vector.Sum(acc)) + double.CreateTruncating(tail);
    }

    /// <summary>(Σ (a − m), Σ (a − m)²): deviations about a nearby m, so both sums stay well conditioned.</summary>
    public static (double Dev, double SqDev) SumDevSq<T>(ReadOnlySpan<T> a, T m) where T : unmanaged, INumber<T>
    {
        int i = 0; var acc = Vector<T>.Zero; var acc2 = Vector<T>.Zero; var vm = new Vector<T>(m); T t = T.Zero, t2 = T.Zero;
        if (Simd<T>())
        {
            ref T ra = ref MemoryMarshal.GetReference(a);
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count) { var d = Vector.LoadUnsafe(ref ra, (nuint)i) - vm; acc += d; acc2 += d * d; }
        }
        for (; i < a.Length; i++) { T d = a[i] - m; t += d; t2 += d * d; }
        return (double.CreateTruncating(Vector.Sum(acc)) + double.CreateTruncating(t), double.CreateTruncating(Vector.Sum(acc2)) + double.CreateTruncating(t2));
    }

    /// <summary>Σ b·(a − m).</summary>
    public static double SumProdDev<T>(ReadOnlySpan<T> a, T m, ReadOnlySpan<T> b) where T : unmanaged, INumber<T>
    {
        int i = 0; var acc = Vector<T>.Zero; var vm = new Vector<T>(m); T tail = T.Zero;
        if (b.Length < a.Length) throw new ArgumentException("ChannelVec: second operand shorter than the first");
        if (Simd<T>())
        {
            ref T ra = ref MemoryMarshal.GetReference(a), rb = ref MemoryMarshal.GetReference(b);
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count) acc += (Vector.LoadUnsafe(ref ra, (nuint)i) - vm) * Vector.LoadUnsafe(ref rb, (nuint)i);
        }
        for (; i < a.Length; i++) tail += (a[i] - m) * b[i];
        return double.CreateTruncating(Vector.Sum(acc)) + double.CreateTruncating(tail);
    }

    /// <summary>dst = a·scale + shift.</summary>
    public static void Affine<T>(ReadOnlySpan<T> a, T scale, T shift, Span<T> dst) where T : unmanaged, INumber<T>
    {
        if (dst.Length < a.Length) throw new ArgumentException("ChannelVec: destination shorter than the source");
        int i = 0; var vs = new Vector<T>(scale); var vb = new Vector<T>(shift);
        if (Simd<T>())
        {
            ref T ra = ref MemoryMarshal.GetReference(a), rd = ref MemoryMarshal.GetReference(dst);
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count) (Vector.LoadUnsafe(ref ra, (nuint)i) * vs + vb).StoreUnsafe(ref rd, (nuint)i);
        }
        for (; i < a.Length; i++) dst[i] = a[i] * scale + shift;
    }

    /// <summary>dst = a·sa + b·sb + shift.</summary>
    public static void Affine2<T>(ReadOnlySpan<T> a, T sa, ReadOnlySpan<T> b, T sb, T shift, Span<T> dst) where T : unmanaged, INumber<T>
    {
        int i = 0; var va = new Vector<T>(sa); var vb = new Vector<T>(sb); var vc = new Vector<T>(shift);
        if (b.Length < a.Length || dst.Length < a.Length) throw new ArgumentException("ChannelVec: operand or destination shorter than the source");
        if (Simd<T>())
        {
            ref T ra = ref MemoryMarshal.GetReference(a), rb = ref MemoryMarshal.GetReference(b), rd = ref MemoryMarshal.GetReference(dst);
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
                (Vector.LoadUnsafe(ref ra, (nuint)i) * va + Vector.LoadUnsafe(ref rb, (nuint)i) * vb + vc).StoreUnsafe(ref rd, (nuint)i);
        }
        for (; i < a.Length; i++) dst[i] = a[i] * sa + b[i] * sb + shift;
    }

    /// <summary>dst = max(a·scale + shift, 0).</summary>
    public static void AffineRelu<T>(ReadOnlySpan<T> a, T scale, T shift, Span<T> dst) where T : unmanaged, INumber<T>
    {
        if (dst.Length < a.Length) throw new ArgumentException("ChannelVec: destination shorter than the source");
        int i = 0; var vs = new Vector<T>(scale); var vb = new Vector<T>(shift);
        if (Simd<T>())
        {
            ref T ra = ref MemoryMarshal.GetReference(a), rd = ref MemoryMarshal.GetReference(dst);
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count) Vector.Max(Vector.LoadUnsafe(ref ra, (nuint)i) * vs + vb, Vector<T>.Zero).StoreUnsafe(ref rd, (nuint)i);
        }
        for (; i < a.Length; i++) { T v = a[i] * scale + shift; dst[i] = v > T.Zero || T.IsNaN(v) ? v : T.Zero; }   // relu(NaN) = NaN, as the vector Max gives
    }

    /// <summary>dst = max(a·scale + shift + r, 0) (the residual tail; same rounding as the three separate ops).</summary>
    public static void AffineAddRelu<T>(ReadOnlySpan<T> a, T scale, T shift, ReadOnlySpan<T> r, Span<T> dst) where T : unmanaged, INumber<T>
    {
        if (dst.Length < a.Length || r.Length < a.Length) throw new ArgumentException("ChannelVec: residual or destination shorter than the source");
        int i = 0; var vs = new Vector<T>(scale); var vb = new Vector<T>(shift);
        if (Simd<T>())
        {
            ref T ra = ref MemoryMarshal.GetReference(a), rr = ref MemoryMarshal.GetReference(r), rd = ref MemoryMarshal.GetReference(dst);
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
                Vector.Max((Vector.LoadUnsafe(ref ra, (nuint)i) * vs + vb) + Vector.LoadUnsafe(ref rr, (nuint)i), Vector<T>.Zero).StoreUnsafe(ref rd, (nuint)i);
        }
        for (; i < a.Length; i++) { T v = (a[i] * scale + shift) + r[i]; dst[i] = v > T.Zero || T.IsNaN(v) ? v : T.Zero; }   // relu(NaN) = NaN, as the vector Max gives
    }

    /// <summary>(Σ dz, Σ dz·(x − m)) with dz = y &gt; 0 ? dy : 0.</summary>
    public static (double Sum, double SumProdDev) MaskedSums<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, ReadOnlySpan<T> x, T m) where T : unmanaged, INumber<T>
    {
        int i = 0; var s = Vector<T>.Zero; var sp = Vector<T>.Zero; var vm = new Vector<T>(m); T ts = T.Zero, tp = T.Zero;
        if (y.Length < dy.Length || x.Length < dy.Length) throw new ArgumentException("ChannelVec: y or x shorter than dy");
        if (Simd<T>())
        {
            ref T rdy = ref MemoryMarshal.GetReference(dy), ry = ref MemoryMarshal.GetReference(y), rx = ref MemoryMarshal.GetReference(x);
            for (; i <= dy.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var dz = Vector.ConditionalSelect(Vector.GreaterThan(Vector.LoadUnsafe(ref ry, (nuint)i), Vector<T>.Zero), Vector.LoadUnsafe(ref rdy, (nuint)i), Vector<T>.Zero);
                s += dz; sp += dz * (Vector.LoadUnsafe(ref rx, (nuint)i) - vm);
            }
        }
        for (; i < dy.Length; i++) { T dz = y[i] > T.Zero ? dy[i] : T.Zero; ts += dz; tp += dz * (x[i] - m); }
        return (double.CreateTruncating(Vector.Sum(s)) + double.CreateTruncating(ts), double.CreateTruncating(Vector.Sum(sp)) + double.CreateTruncating(tp));
    }

    /// <summary>dst = dz·sa + b·sb + shift with dz = y &gt; 0 ? dy : 0.</summary>
    public static void MaskedAffine2<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, T sa, ReadOnlySpan<T> b, T sb, T shift, Span<T> dst) where T : unmanaged, INumber<T>
    {
        int i = 0; var va = new Vector<T>(sa); var vb = new Vector<T>(sb); var vc = new Vector<T>(shift);
        if (y.Length < dy.Length || b.Length < dy.Length || dst.Length < dy.Length) throw new ArgumentException("ChannelVec: operand or destination shorter than dy");
        if (Simd<T>())
        {
            ref T rdy = ref MemoryMarshal.GetReference(dy), ry = ref MemoryMarshal.GetReference(y), rb = ref MemoryMarshal.GetReference(b), rd = ref MemoryMarshal.GetReference(dst);
            for (; i <= dy.Length - Vector<T>.Count; i += Vector<T>.Count)
            {
                var dz = Vector.ConditionalSelect(Vector.GreaterThan(Vector.LoadUnsafe(ref ry, (nuint)i), Vector<T>.Zero), Vector.LoadUnsafe(ref rdy, (nuint)i), Vector<T>.Zero);
                (dz * va + Vector.LoadUnsafe(ref rb, (nuint)i) * vb + vc).StoreUnsafe(ref rd, (nuint)i);
            }
        }
        for (; i < dy.Length; i++) { T dz = y[i] > T.Zero ? dy[i] : T.Zero; dst[i] = dz * sa + b[i] * sb + shift; }
    }
}
