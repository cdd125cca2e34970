namespace MtlMoe.Engine.Backends.Cuda;

// The fused gating pass (kernels/moe_gating.cu, moe_gating_fused(_k2)_f32 and their backward): noisy top-k, softmax
// over the top k, importance, load (Φ), their totals and the aux loss in ONE launch; the backward folds the aux
// gradient in and writes d clean and d raw in ONE launch. E ≤ 64 and k ≤ 8 (the _k2 pair for k ≤ 2); float64 and
// larger E or k take the composed path (MoeGating + the host-side aux, MoeGatingComposed). Sums run in a fixed order
// (lanes over 8 rows, warps in order, groups of 32 blocks, groups in order): bit-identical from run to run; they differ
// from the CPU's order in the last bits, so parity with the CPU is within float32 tolerance.
public sealed partial class CudaBackend
{
    const int FusedRows = 64;          // MOE_FUSED_ROWS: 8 warps × 8 rows per block
    const int FusedThreads = 256;      // MOE_FUSED_THREADS
    const int FusedGroup = 32;         // MOE_FUSED_GROUP: blocks per group partial

    static bool FusedGatingApplies(DType t, int e, int k) => t == DType.Float32 && e <= 64 && k <= 8;

    static string FusedSuffix(int k) => k <= 2 ? "k2_f32" : "f32";

    /// <inheritdoc />
    public (Storage Packed, Storage TopIndices) MoeGatingFused(StorageView cleanView, StorageView? rawNoiseView, StorageView? noiseView,
        int k, double noiseFloor, double importanceWeight, double loadWeight)
    {
        int b = cleanView.Shape[0], e = cleanView.Shape[1];
        if (!FusedGatingApplies(cleanView.DType, e, k))
            return MoeGatingComposed.Forward(this, cleanView, rawNoiseView, noiseView, k, noiseFloor, importanceWeight, loadWeight);
        const string op = "moe_gating_fused";
        int head = (b + 2) * e;
        // [(B + 2)·E + 3]; every element is written by the kernel (zeroed only when there are no rows to write it)
        var flat = b == 0 ? NewZeroed(DType.Float32, MoeGatingComposed.PackedLength(b, e)) : New(DType.Float32, MoeGatingComposed.PackedLength(b, e));
        var top = New(DType.Int32, b * k);
        if (b == 0) return (flat, top);   // no rows: zero totals, CV² 0/(0 + 1e-10) = 0
        int nblk = (b + FusedRows - 1) / FusedRows, ngroups = (nblk + FusedGroup - 1) / FusedGroup;
        var c = Dense(cleanView.Storage, cleanView.Layout, op);
        var raw = rawNoiseView is { } rv ? Dense(rv.Storage, rv.Layout, op) : null;
        var eps = noiseView is { } nv ? Dense(nv.Storage, nv.Layout, op) : null;
        var part = New(DType.Float32, 2 * nblk * e + 2 * ngroups * e);
        try
        {
            var counters = Context.MoeCounters(ngroups + 1);
            Context.Launch("moe_gating", "moe_gating_fused_" + FusedSuffix(k), nblk, FusedThreads, new KernelArgs()
                .Add(c.Ptr).Add(raw?.Ptr ?? default).Add(eps?.Ptr ?? default).Add(flat.Ptr).Add(top.Ptr).Add(default(Native.CuDevicePtr))
                .Add(part.Ptr).Add(counters).Add(flat.At(head)).Add(b).Add(e).Add(k)
                .Add((float)noiseFloor).Add((float)importanceWeight).Add((float)loadWeight));
            return (flat, top);
        }
        catch { flat.Release(); top.Release(); throw; }
        finally { c.Release(); raw?.Release(); eps?.Release(); part.Release(); }
    }

    /// <inheritdoc />
    public (Storage GradClean, Storage? GradRawNoise) MoeGatingFusedBackward(StorageView cleanView, StorageView? rawNoiseView, StorageView? noiseView,
        StorageView packedView, StorageView gradPackedView, int k, double noiseFloor, double importanceWeight, double loadWeight)
    {
        int b = cleanView.Shape[0], e = cleanView.Shape[1];
        if (!FusedGatingApplies(cleanView.DType, e, k))
            return MoeGatingComposed.Backward(this, cleanView, rawNoiseView, noiseView, packedView, gradPackedView, k, noiseFloor, importanceWeight, loadWeight);
        const string op = "moe_gating_fused backward";
        int head = (b + 2) * e;
        var gClean = New(DType.Float32, b * e);                              // every element written by the kernel
        var gRaw = rawNoiseView is null ? null : New(DType.Float32, b * e);
        if (b == 0) return (gClean, gRaw);
        var c = Dense(cleanView.Storage, cleanView.Layout, op);
        var raw = rawNoiseView is { } rv ? Dense(rv.Storage, rv.Layout, op) : null;
        var eps = noiseView is { } nv ? Dense(nv.Storage, nv.Layout, op) : null;
        var packed = Dense(packedView.Storage, packedView.Layout, op);
        var grad = Dense(gradPackedView.Storage, gradPackedView.Layout, op);   // [(B + 2)·E + 3]: gates, importance, load, aux
        try
        {
            Context.Launch("moe_gating", "moe_gating_fused_backward_" + FusedSuffix(k), (b + FusedRows - 1) / FusedRows, FusedThreads, new KernelArgs()
                .Add(c.Ptr).Add(raw?.Ptr ?? default).Add(eps?.Ptr ?? default).Add(packed.Ptr).Add(grad.Ptr).Add(grad.At(head))
                .Add(gClean.Ptr).Add(gRaw?.Ptr ?? default).Add(b).Add(e).Add(k)
                .Add((float)noiseFloor).Add((float)importanceWeight).Add((float)loadWeight));
            return (gClean, gRaw);
        }
        catch { gClean.Release(); gRaw?.Release(); throw; }
        finally { c.Release(); raw?.Release(); eps?.Release(); packed.Release(); grad.Release(); }
    }
}
