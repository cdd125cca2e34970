using System.Runtime.InteropServices;

namespace MtlMoe.Engine.Backends.Cuda;

// MoE primitives through kernels/moe_gating.cu and kernels/moe_dispatch.cu (float32 gating; float32 or bf16 dispatch and
// combine with float32 gates; int32 indices), launched as kernels/MOE_REGISTERS.md and the kernels' comments prescribe.
// No float atomics: results are bit-identical run to run.
public sealed partial class CudaBackend
{
    const int MoeRows = MoeKernelConstants.GatingRowsPerBlock;   // rows per gating block (one warp each)
    const int MoeThreads = 32 * MoeRows;
    const int MoeReduceThreads = 256;   // MOE_REDUCE_THREADS in kernels/moe_common.cuh: one block per importance/load column
    const int RouteChunk = 256;                                  // MOE_ROUTE_CHUNK

    static bool MoeWarpPath(int e, int k) => e <= 64 && k <= 8;

    /// <inheritdoc />
    public (Storage Packed, Storage TopIndices) MoeGating(StorageView cleanView, StorageView? rawNoiseView,
        StorageView? noiseView, int k, double noiseFloor)
    {
        var (clean, cleanLayout) = cleanView;
        var (rawNoise, rawNoiseLayout) = StorageView.Split(rawNoiseView);
        var (noise, noiseLayout) = StorageView.Split(noiseView);
        const string op = "moe_gating";
        RequireF32(op, clean.DType);
        int b = cleanLayout.Shape[0], e = cleanLayout.Shape[1];
        int nblk = (b + MoeRows - 1) / MoeRows;
        var c = Dense(clean, cleanLayout, op);
        var raw = rawNoise is null ? null : Dense(rawNoise, rawNoiseLayout, op);
        var eps = noise is null ? null : Dense(noise, noiseLayout, op);
        var packed = NewZeroed(DType.Float32, (b + 2) * e);
        var top = New(DType.Int32, b * k);
        var part = New(DType.Float32, 2 * nblk * e);
        try
        {
            if (b == 0) return (packed, top);
            var args = new KernelArgs().Add(c.Ptr).Add(raw?.Ptr ?? default).Add(eps?.Ptr ?? default).Add(packed.Ptr).Add(top.Ptr)
                .Add(part.Ptr).Add(b).Add(e).Add(k).Add((float)noiseFloor);
            if (MoeWarpPath(e, k)) Context.Launch("moe_gating", "moe_gating_f32", nblk, MoeThreads, args);
            else
            {
                int m = Math.Min(k + 1, e);
                Context.Launch("moe_gating", "moe_gating_block_f32", nblk, MoeThreads, args, sharedBytes: (5 * e + 2 * m) * 4 + m * 4);
            }
            Context.Launch("moe_gating", "moe_gating_reduce_f32", 2L * e, MoeReduceThreads,
                new KernelArgs().Add(part.Ptr).Add(packed.Ptr).Add(b).Add(e).Add(nblk));
            return (packed, top);
        }
        finally { c.Release(); raw?.Release(); eps?.Release(); part.Release(); }
    }

    /// <inheritdoc />
    public (Storage GradClean, Storage? GradRawNoise) MoeGatingBackward(StorageView cleanView, StorageView? rawNoiseView,
        StorageView? noiseView, StorageView gradPackedView, int k, double noiseFloor)
    {
        var (clean, cleanLayout) = cleanView;
        var (rawNoise, rawNoiseLayout) = StorageView.Split(rawNoiseView);
        var (noise, noiseLayout) = StorageView.Split(noiseView);
        var (gradPacked, gradPackedLayout) = gradPackedView;
        const string op = "moe_gating backward";
        RequireF32(op, clean.DType);
        int b = cleanLayout.Shape[0], e = cleanLayout.Shape[1];
        var c = Dense(clean, cleanLayout, op);
        var raw = rawNoise is null ? null : Dense(rawNoise, rawNoiseLayout, op);
        var eps = noise is null ? null : Dense(noise, noiseLayout, op);
        var gp = Dense(gradPacked, gradPackedLayout, op);
        var gClean = NewZeroed(DType.Float32, b * e);
        var gRaw = rawNoise is null ? null : NewZeroed(DType.Float32, b * e);
        try
        {
            if (b > 0)
            {
                var args = new KernelArgs().Add(c.Ptr).Add(raw?.Ptr ?? default).Add(eps?.Ptr ?? default).Add(gp.Ptr).Add(gClean.Ptr)
                    .Add(gRaw?.Ptr ?? default).Add(b).Add(e).Add(k).Add((float)noiseFloor);
                if (MoeWarpPath(e, k)) Context.Launch("moe_gating", "moe_gating_backward_f32", (b + MoeRows - 1) / MoeRows, MoeThreads, args);
                else
                {
                    int m = Math.Min(k + 1, e);
                    Context.Launch("moe_gating", "moe_gating_backward_block_f32", b, MoeThreads, args, sharedBytes: (6 * e + 2 * m + 2) * 4 + m * 4);
                }
            }
            return (gClean, gRaw);
        }
        finally { c.Release(); raw?.Release(); eps?.Release(); gp.Release(); }
    }

    /// <inheritdoc />
    public MoeRoutePlan MoeRoute(Storage topIndices, int batch, int k, int numExperts, int capacity)
    {
        int pairs = batch * k, e = numExperts;
        int nblk = Math.Max(1, (pairs + RouteChunk - 1) / RouteChunk);
        var top = P(topIndices, "moe_route");
        var rank = New(DType.Int32, pairs);
        var blockCounts = NewZeroed(DType.Int32, nblk * e);
        var blockBase = New(DType.Int32, nblk * e);
        // One buffer for the values the host reads back: requested [E], kept [E], dropped [1], error [1].
        var small = NewZeroed(DType.Int32, 2 * e + 2);
        var offsets = New(DType.Int32, e + 1);
        var slotOf = New(DType.Int32, pairs);
        CudaStorage? sourceRow = null;
        try
        {
            var requested = small.Ptr; var kept = small.At(e); var dropped = small.At(2 * e); var error = small.At(2 * e + 1);
            if (pairs > 0)
                Context.Launch("moe_dispatch", "moe_route_count_i32", nblk, RouteChunk,
                    new KernelArgs().Add(top).Add(rank.Ptr).Add(blockCounts.Ptr).Add(error).Add(pairs).Add(e));
            Context.Launch("moe_dispatch", "moe_route_scan_i32", 1, 256, new KernelArgs().Add(blockCounts.Ptr).Add(blockBase.Ptr)
                .Add(requested).Add(kept).Add(offsets.Ptr).Add(dropped).Add(nblk).Add(e).Add(capacity));
            var host = new int[2 * e + 2];
            Context.CopyToHost(small.Ptr, MemoryMarshal.AsBytes(host.AsSpan()));   // synchronises: the plan's counts are host data
            if (host[2 * e + 1] != 0)
                throw new ArgumentOutOfRangeException(nameof(topIndices), $"moe_route: an expert index in topIndices [{batch}, {k}] is outside [0, {e})");
            var req = host[..e]; var kp = host[e..(2 * e)];
            int n = kp.Sum();
            sourceRow = New(DType.Int32, n);
            if (pairs > 0)
                Launch("moe_dispatch", "moe_route_place_i32", pairs, new KernelArgs().Add(top).Add(rank.Ptr).Add(blockBase.Ptr).Add(offsets.Ptr)
                    .Add(kept).Add(slotOf.Ptr).Add(sourceRow.Ptr).Add(pairs).Add(k).Add(e));
            var plan = new MoeRoutePlan(offsets, slotOf, sourceRow, req, kp, host[2 * e]);
            offsets = null!; slotOf = null!; sourceRow = null;
            return plan;
        }
        finally
        {
            rank.Release(); blockCounts.Release(); blockBase.Release(); small.Release();
            offsets?.Release(); slotOf?.Release(); sourceRow?.Release();
        }
    }

    /// <inheritdoc />
    public Storage MoeDispatch(StorageView xView, Storage sourceRow, int rows)
    {
        var (x, xLayout) = xView;
        RequireDType("moe_dispatch", x.DType, DType.Float32, DType.BFloat16);
        int d = xLayout.Shape[1];
        var buffer = New(x.DType, rows * d);
        // A row-strided x is read in place (ldx = its row stride); anything else is made dense first.
        bool inPlace = xLayout.Strides[1] == 1 || d == 1;
        var xd = inPlace ? null : Dense(x, xLayout, "moe_dispatch");
        try
        {
            var px = xd is null ? P(x, xLayout, "moe_dispatch") : xd.Ptr;
            int ldx = xd is null ? (xLayout.Shape[0] == 1 ? d : xLayout.Strides[0]) : d;
            Launch("moe_dispatch", "moe_dispatch_" + Sfx(x.DType), (long)rows * d, new KernelArgs().Add(px).Add(ldx).Add(P(sourceRow)).Add(buffer.Ptr).Add(rows).Add(d));
        }
        finally { xd?.Release(); }
        return buffer;
    }

    /// <inheritdoc />
    public Storage MoeDispatchBackward(StorageView gradBufferView, Storage slotOf, int batch, int k)
    {
        var (gradBuffer, gradLayout) = gradBufferView;
        RequireDType("moe_dispatch backward", gradBuffer.DType, DType.Float32, DType.BFloat16);
        int d = gradLayout.Shape[1];
        var g = Dense(gradBuffer, gradLayout, "moe_dispatch backward");
        var dx = New(gradBuffer.DType, batch * d);
        try { Launch("moe_dispatch", "moe_dispatch_backward_" + Sfx(gradBuffer.DType), (long)batch * d, new KernelArgs().Add(g.Ptr).Add(P(slotOf)).Add(dx.Ptr).Add(batch).Add(k).Add(d)); }
        finally { g.Release(); }
        return dx;
    }

    /// <inheritdoc />
    public Storage MoeCombine(StorageView yView, StorageView gatesView, Storage topIndices, Storage slotOf, int k)
    {
        var (y, yLayout) = yView;
        var (gates, gatesLayout) = gatesView;
        RequireDType("moe_combine", y.DType, DType.Float32, DType.BFloat16);
        RequireDType("moe_combine gates", gates.DType, DType.Float32);
        int b = gatesLayout.Shape[0], e = gatesLayout.Shape[1], h = yLayout.Shape[1];
        var yd = Dense(y, yLayout, "moe_combine"); var gd = Dense(gates, gatesLayout, "moe_combine");
        var output = New(y.DType, b * h);
        try
        {
            Launch("moe_dispatch", "moe_combine_" + Sfx(y.DType), (long)b * h, new KernelArgs().Add(yd.Ptr).Add(gd.Ptr).Add(P(topIndices)).Add(P(slotOf))
                .Add(output.Ptr).Add(b).Add(e).Add(k).Add(h));
        }
        finally { yd.Release(); gd.Release(); }
        return output;
    }

    /// <inheritdoc />
    public (Storage GradY, Storage GradGates) MoeCombineBackward(StorageView gradOutView, StorageView yView,
        StorageView gatesView, Storage topIndices, Storage slotOf, int k)
    {
        var (gradOut, gradLayout) = gradOutView;
        var (y, yLayout) = yView;
        var (gates, gatesLayout) = gatesView;
        RequireDType("moe_combine backward", y.DType, DType.Float32, DType.BFloat16);
        RequireDType("moe_combine backward gates", gates.DType, DType.Float32);
        if (gradOut.DType != y.DType) throw new InvalidOperationException($"moe_combine backward: gradient {gradOut.DType.Name()} and expert outputs {y.DType.Name()} differ");
        int b = gatesLayout.Shape[0], e = gatesLayout.Shape[1], h = yLayout.Shape[1], n = yLayout.Shape[0];
        var go = Dense(gradOut, gradLayout, "moe_combine backward");
        var yd = Dense(y, yLayout, "moe_combine backward"); var gd = Dense(gates, gatesLayout, "moe_combine backward");
        var gradY = NewZeroed(y.DType, n * h);
        var gradGates = NewZeroed(DType.Float32, b * e);   // MOE_REGISTERS.md: zero-filled before the kernel
        try
        {
            long pairs = (long)b * k;
            Context.Launch("moe_dispatch", "moe_combine_backward_" + Sfx(y.DType), (pairs + 7) / 8, 256, new KernelArgs().Add(go.Ptr).Add(yd.Ptr).Add(gd.Ptr)
                .Add(P(topIndices)).Add(P(slotOf)).Add(gradY.Ptr).Add(gradGates.Ptr).Add(b).Add(e).Add(k).Add(h));
        }
        finally { go.Release(); yd.Release(); gd.Release(); }
        return (gradY, gradGates);
    }
}
