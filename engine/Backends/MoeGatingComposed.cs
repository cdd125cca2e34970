using System.Numerics;

namespace MtlMoe.Engine.Backends;

/// <summary>
/// <see cref="IBackend.MoeGatingFused"/> and its backward composed from a backend's <see cref="IBackend.MoeGating"/> /
/// <see cref="IBackend.MoeGatingBackward"/> and the host-side <see cref="MoeAuxLoss"/>: the CPU's implementation, and the
/// CUDA backend's where its fused kernels do not apply (E &gt; 64, k &gt; 8, float64). Only the [2, E] importance/load rows
/// and three scalars cross to the host.
/// </summary>
public static class MoeGatingComposed
{
    /// <summary>Elements of the fused op's packed output for B rows and E experts: (B + 2)·E + 3.</summary>
    public static int PackedLength(int batch, int experts) => checked((batch + 2) * experts + 3);

    /// <summary>See <see cref="IBackend.MoeGatingFused"/>.</summary>
    public static (Storage Packed, Storage TopIndices) Forward(IBackend be, StorageView clean, StorageView? rawNoise, StorageView? noise,
        int k, double noiseFloor, double importanceWeight, double loadWeight) => clean.DType switch
    {
        DType.Float32 => Forward<float>(be, clean, rawNoise, noise, k, noiseFloor, importanceWeight, loadWeight),
        DType.Float64 => Forward<double>(be, clean, rawNoise, noise, k, noiseFloor, importanceWeight, loadWeight),
        _ => throw new NotSupportedException($"moe_gating_fused: logits must be float32 or float64, got {clean.DType.Name()} (autocast keeps the gating in float32)"),
    };

    /// <summary>See <see cref="IBackend.MoeGatingFusedBackward"/>.</summary>
    public static (Storage GradClean, Storage? GradRawNoise) Backward(IBackend be, StorageView clean, StorageView? rawNoise, StorageView? noise,
        StorageView packed, StorageView gradPacked, int k, double noiseFloor, double importanceWeight, double loadWeight) => clean.DType switch
    {
        DType.Float32 => Backward<float>(be, clean, rawNoise, noise, packed, gradPacked, k, noiseFloor, importanceWeight, loadWeight),
        DType.Float64 => Backward<double>(be, clean, rawNoise, noise, packed, gradPacked, k, noiseFloor, importanceWeight, loadWeight),
        _ => throw new NotSupportedException($"moe_gating_fused backward: logits must be float32 or float64, got {clean.DType.Name()}"),
    };

    // A run of n elements of a dense storage from element `at`.
    private static StorageView Slice(Storage s, int at, int n) => new(s, new Layout([n], [1], at));

    private static StorageView Slice(StorageView v, int at, int n) => new(v.Storage, new Layout([n], [1], v.Layout.Offset + at));

    private static (Storage, Storage) Forward<T>(IBackend be, StorageView clean, StorageView? rawNoise, StorageView? noise,
        int k, double noiseFloor, double wImp, double wLoad) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int b = clean.Shape[0], e = clean.Shape[1], head = (b + 2) * e;
        var (packed, top) = be.MoeGating(clean, rawNoise, noise, k, noiseFloor);   // packed: [B + 2, E]
        Storage? flat = null, tail = null;
        try
        {
            var stats = new T[2 * e];                                               // importance, load
            be.Download<T>(Slice(packed, b * e, 2 * e), stats);
            var (aux, ci, cl) = MoeAuxLoss.Forward<T>(stats.AsSpan(0, e), stats.AsSpan(e, e), wImp, wLoad);
            flat = be.Allocate(clean.DType, PackedLength(b, e));                    // flat: [(B + 2)·E + 3]
            be.CopyInto(Slice(packed, 0, head), Slice(flat, 0, head));
            tail = be.Upload<T>([aux, ci, cl]);
            be.CopyInto(Slice(tail, 0, 3), Slice(flat, head, 3));
            var result = (flat, top);
            flat = null; top = null!;
            return result;
        }
        finally { packed.Release(); tail?.Release(); flat?.Release(); top?.Release(); }
    }

    private static (Storage, Storage?) Backward<T>(IBackend be, StorageView clean, StorageView? rawNoise, StorageView? noise,
        StorageView packed, StorageView gradPacked, int k, double noiseFloor, double wImp, double wLoad) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int b = clean.Shape[0], e = clean.Shape[1], head = (b + 2) * e;
        var gradAux = new T[1];
        be.Download<T>(Slice(gradPacked, head, 1), gradAux);
        // g: [B + 2, E], the gradient of gates, importance and load (a dense copy: the aux part is folded into it).
        var g = be.Contiguous(Slice(gradPacked, 0, head));
        try
        {
            // No aux gradient (the loss does not use aux): nothing to fold, exactly as when the composed aux had no consumer.
            if (gradAux[0] != T.Zero)
            {
                var stats = new T[2 * e]; var d = new T[2 * e];
                be.Download<T>(Slice(packed, b * e, 2 * e), stats);
                be.Download<T>(Slice(g, b * e, 2 * e), d);
                MoeAuxLoss.Backward<T>(stats.AsSpan(0, e), stats.AsSpan(e, e), gradAux[0], wImp, wLoad, d.AsSpan(0, e), d.AsSpan(e, e));
                var up = be.Upload<T>(d);
                try { be.CopyInto(Slice(up, 0, 2 * e), Slice(g, b * e, 2 * e)); }
                finally { up.Release(); }
            }
            return be.MoeGatingBackward(clean, rawNoise, noise, StorageView.Dense(g, [b + 2, e]), k, noiseFloor);
        }
        finally { g.Release(); }
    }
}
