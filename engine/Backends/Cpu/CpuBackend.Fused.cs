using System.Numerics;
using System.Runtime.CompilerServices;

namespace MtlMoe.Engine.Backends.Cpu;

// Fused primitives (IBackend.Fused): batch-norm + ReLU (+ residual) in one pass over the statistics of
// CpuBackend.Norm.cs, and ReLU backward in one vectorised sweep.
public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dReluTrainForward(StorageView x, StorageView? weight, StorageView? bias,
        StorageView runningMean, StorageView runningVar, double momentum, double eps)
        => BnTrain(x, weight, bias, runningMean, runningVar, momentum, eps, relu: true, residual: null, "batch_norm2d_relu");

    /// <inheritdoc />
    public (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dAddReluTrainForward(StorageView x, StorageView residual,
        StorageView? weight, StorageView? bias, StorageView runningMean, StorageView runningVar, double momentum, double eps)
        => Options.On(CpuPath.BnAddReluFused)
            ? BnTrain(x, weight, bias, runningMean, runningVar, momentum, eps, relu: true, residual, "batch_norm2d_add_relu")
            : IBackend.ComposeBatchNorm2dAddRelu(this, x, residual, weight, bias, runningMean, runningVar, momentum, eps);

    /// <inheritdoc />
    public (Storage Dx, Storage DWeight, Storage DBias) BatchNorm2dReluBackward(StorageView dy, StorageView y, StorageView x,
        StorageView mean, StorageView invStd, StorageView? weight, bool batchStats)
        => BnBack(dy, x, mean, invStd, weight, batchStats, reluY: y, "batch_norm2d_relu backward");

    /// <inheritdoc />
    public Storage ReluBackward(StorageView dyView, StorageView yView)
    {
        var (dy, ldy) = dyView;
        var (y, ly) = yView;
        if (dy.DType == DType.BFloat16 || y.DType == DType.BFloat16) return ReluBackwardBf16(dyView, yView);
        if (!ldy.IsContiguous || !ly.IsContiguous || dy.DType != y.DType || !dy.DType.IsFloat())
        {
            // Strided or unusual operands: the composed form (mask, then product).
            var mask = Unary(UnaryOp.GtScalar, yView, 0);
            try { return Binary(BinaryOp.Mul, dyView, StorageView.Dense(mask, ly.Shape)); }
            finally { mask.Release(); }
        }
        return dy.DType == DType.Float32 ? ReluBackT<float>(dy, ldy, y, ly) : ReluBackT<double>(dy, ldy, y, ly);
    }

    private Storage ReluBackT<T>(Storage dys, Layout ldy, Storage ys, Layout ly) where T : unmanaged, INumber<T>
    {
        T[] dy = Arr<T>(dys), y = Arr<T>(ys);
        int n = ly.Count, od = ldy.Offset, oy = ly.Offset;
        var outS = NewStorage(dys.DType, n);
        var dx = outS.Array<T>(); // dx: like y
        bool vector = Options.On(CpuPath.VectorElementwise);
        StridedIter.ParallelChunks(Options, n, 2, (lo, hi) =>
            ReluBackSpan<T>(dy.AsSpan(od + (int)lo, (int)(hi - lo)), y.AsSpan(oy + (int)lo, (int)(hi - lo)), dx.AsSpan((int)lo, (int)(hi - lo)), vector));
        return outS;
    }

    // dx = y > 0 ? dy : 0, vectorised unless "vector-elementwise" is off (NaN in y gives 0, as the composed mask does).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ReluBackSpan<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> dx, bool vector) where T : unmanaged, INumber<T>
    {
        int i = 0, n = dx.Length;
        if (n == 0) return;
        if (vector && Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
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
