using System.Numerics;
using System.Runtime.CompilerServices;

namespace MtlMoe.Engine.Backends.Cpu;

// Fused primitives (IBackend.Fused): batch-norm + ReLU (+ residual) in one pass over the statistics of
// CpuBackend.Norm.cs, and ReLU backward in one vectorised sweep.
public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dReluTrainForward(StorageView xView,
        StorageView? weightView, StorageView? biasView,
        StorageView runningMeanView, StorageView runningVarView, double momentum, double eps)
    {
        var (x, lx) = xView;
        var (weight, lweight) = StorageView.Split(weightView);
        var (bias, lbias) = StorageView.Split(biasView);
        var (runningMean, lrunningMean) = runningMeanView;
        var (runningVar, lrunningVar) = runningVarView;
        return x.DType switch
        {
            DType.Float32 => BnTrainT<float>(x, lx, weight, lweight, bias, lbias, runningMean, lrunningMean, runningVar, lrunningVar, momentum, eps, relu: true),
            DType.Float64 => BnTrainT<double>(x, lx, weight, lweight, bias, lbias, runningMean, lrunningMean, runningVar, lrunningVar, momentum, eps, relu: true),
            _ => throw new NotSupportedException($"batch_norm2d_relu: float tensors only, got {x.DType.Name()}"),
        };
    }

    /// <inheritdoc />
    public (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dAddReluTrainForward(StorageView xView, StorageView residualView,
        StorageView? weightView, StorageView? biasView,
        StorageView runningMeanView, StorageView runningVarView, double momentum, double eps)
    {
        var (x, lx) = xView;
        var (residual, lresidual) = residualView;
        var (weight, lweight) = StorageView.Split(weightView);
        var (bias, lbias) = StorageView.Split(biasView);
        var (runningMean, lrunningMean) = runningMeanView;
        var (runningVar, lrunningVar) = runningVarView;
        return x.DType switch
        {
            _ when !Options.On(CpuPath.BnAddReluFused) => IBackend.ComposeBatchNorm2dAddRelu(this, xView, residualView, weightView, biasView, runningMeanView, runningVarView, momentum, eps),
            DType.Float32 => BnTrainT<float>(x, lx, weight, lweight, bias, lbias, runningMean, lrunningMean, runningVar, lrunningVar, momentum, eps, relu: true, residual, lresidual),
            DType.Float64 => BnTrainT<double>(x, lx, weight, lweight, bias, lbias, runningMean, lrunningMean, runningVar, lrunningVar, momentum, eps, relu: true, residual, lresidual),
            _ => throw new NotSupportedException($"batch_norm2d_add_relu: float tensors only, got {x.DType.Name()}"),
        };
    }

    /// <inheritdoc />
    public (Storage Dx, Storage DWeight, Storage DBias) BatchNorm2dReluBackward(StorageView dyView, StorageView yView, StorageView xView,
        StorageView meanView, StorageView invStdView, StorageView? weightView, bool batchStats)
    {
        var (dy, ldy) = dyView;
        var (y, ly) = yView;
        var (x, lx) = xView;
        var (mean, lmean) = meanView;
        var (invStd, linvStd) = invStdView;
        var (weight, lweight) = StorageView.Split(weightView);
        return x.DType switch
        {
            DType.Float32 => BnBackT<float>(dy, ldy, x, lx, mean, lmean, invStd, linvStd, weight, lweight, batchStats, y, ly),
            DType.Float64 => BnBackT<double>(dy, ldy, x, lx, mean, lmean, invStd, linvStd, weight, lweight, batchStats, y, ly),
            _ => throw new NotSupportedException($"batch_norm2d_relu backward: float tensors only, got {x.DType.Name()}"),
        };
    }

    /// <inheritdoc />
    public Storage ReluBackward(StorageView dyView, StorageView yView)
    {
        var (dy, ldy) = dyView;
        var (y, ly) = yView;
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
