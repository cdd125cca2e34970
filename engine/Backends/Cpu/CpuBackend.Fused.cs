using System.Numerics;
using System.Runtime.CompilerServices;

namespace MtlMoe.Engine.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <summary>Forces the portable scalar loops in the fused element-wise kernels (tests).</summary>
    internal static bool ForceScalarElementwise { get; set; }

    /// <inheritdoc />
    public Storage ReluBackward(Storage dy, Layout ldy, Storage y, Layout ly)
    {
        if (!ldy.IsContiguous || !ly.IsContiguous || dy.DType != y.DType || !dy.DType.IsFloat())
        {
            // Strided or unusual operands: the composed form (mask, then product).
            var mask = Unary(UnaryOp.GtScalar, y, ly, 0);
            try { return Binary(BinaryOp.Mul, dy, ldy, mask, Layout.Contiguous(ly.Shape)); }
            finally { mask.Release(); }
        }
        return dy.DType == DType.Float32 ? ReluBackT<float>(dy, ldy, y, ly) : ReluBackT<double>(dy, ldy, y, ly);
    }

    private static Storage ReluBackT<T>(Storage dys, Layout ldy, Storage ys, Layout ly) where T : unmanaged, INumber<T>
    {
        T[] dy = Arr<T>(dys), y = Arr<T>(ys);
        int n = ly.Count, od = ldy.Offset, oy = ly.Offset;
        var outS = NewStorage(dys.DType, n);
        var dx = outS.Array<T>(); // dx: like y
        StridedIter.ParallelChunks(n, 2, (lo, hi) =>
            ReluBackSpan<T>(dy.AsSpan(od + (int)lo, (int)(hi - lo)), y.AsSpan(oy + (int)lo, (int)(hi - lo)), dx.AsSpan((int)lo, (int)(hi - lo))));
        return outS;
    }

    // dx = y > 0 ? dy : 0, vectorised (NaN in y gives 0, as the composed mask does).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ReluBackSpan<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> dx) where T : unmanaged, INumber<T>
    {
        int i = 0, n = dx.Length;
        if (n == 0) return;
        if (!ForceScalarElementwise && Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            ref T rdy = ref Unsafe.AsRef(in dy[0]), ry = ref Unsafe.AsRef(in y[0]), rdx = ref dx[0];
            for (; i <= n - Vector<T>.Count; i += Vector<T>.Count)
            {
                var vy = Vector.LoadUnsafe(ref ry, (nuint)i);
                var vd = Vector.LoadUnsafe(ref rdy, (nuint)i);
                Vector.ConditionalSelect(Vector.GreaterThan(vy, Vector<T>.Zero), vd, Vector<T>.Zero).StoreUnsafe(ref rdx, (nuint)i);
            }
        }
        for (; i < n; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
    }
}
