using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

// Channels-last (NHWC) activations, CudaBackendOptions.ChannelsLast. The seam's storages are dense in their logical
// [N, C, H, W] shape; a storage made by a channels-last path instead holds [N, H·W, C] and says so (CudaStorage.Nhwc).
// Two rules keep every other primitive correct without knowing about it:
//   1. every device address the backend takes through Cu/P/Dense converts a channels-last storage back to NCHW first,
//      in place (kernels/layout.cu's tiled transpose into a new block, which replaces the old one);
//   2. the channels-last paths (convolutions, batch-norm, ReLU backward, casts, same-shape pointwise ops) read storages
//      through NhwcIn, which passes a channels-last storage as it is and gives anything else a temporary NHWC copy.
// So conversions happen only where the network leaves the channels-last region (its input, pooling, the head), and a
// conversion is never undone by another.
public sealed partial class CudaBackend
{
    /// <summary>Converts a channels-last storage back to dense NCHW, in place (a no-op for any other storage).</summary>
    internal void EnsureNchw(CudaStorage s)
    {
        if (s.Nhwc is not { } d) return;
        s.Nhwc = null;
        if (s.Length == 0) return;
        var block = Context.Allocator.Allocate((long)s.Length * s.DType.SizeOf()).Address;
        Context.Launch("layout", "nhwc_to_nchw_" + TransposeSfx(s.DType, "channels-last storage"), TransposeGrid(d), 256,
            new KernelArgs().Add((long)d.N).Add((long)d.C).Add(d.HW).Add(s.Ptr).Add(new CuDevicePtr(block)));
        s.ReplaceBlock(block);
    }

    static string TransposeSfx(DType t, string op) => t switch
    {
        DType.Float32 => "f32",
        DType.BFloat16 => "bf16",
        _ => throw new NotSupportedException($"{op} on cuda: channels-last is float32 and bf16 only (got {t.Name()})"),
    };

    // One block per 32×32 tile, at most a grid the kernel strides over.
    static long TransposeGrid(NhwcDims d) => Math.Clamp(d.N * ((d.C + 31) / 32) * ((d.HW + 31) / 32), 1, 65535L * 16);

    /// <summary>True when this backend runs channels-last and <paramref name="t"/> has NHWC paths.</summary>
    bool ChannelsLastFor(DType t) => Options.ChannelsLast && t is DType.Float32 or DType.BFloat16;

    /// <summary>A 4-d operand as NHWC: a channels-last storage seen whole is passed as it is; anything else is copied.</summary>
    internal NhwcOperand NhwcIn(StorageView v, string op)
    {
        var (s, l) = v;
        var c = s as CudaStorage ?? throw new InvalidOperationException($"{op}: a {s.Device} storage was handed to the {Device} backend");
        if (c.Context != Context) throw new InvalidOperationException($"{op}: a storage of another CUDA context was handed to the {Device} backend");
        if (l.Rank != 4) throw new ShapeException($"{op}: channels-last needs a 4-d operand, got {Shapes.Format(l.Shape)}");
        var dims = new NhwcDims(l.Shape[0], l.Shape[1], (long)l.Shape[2] * l.Shape[3]);
        if (c.Nhwc == dims && l.IsContiguous && l.Offset == 0 && l.Count == c.Length) return new(c, owned: false);
        var dense = Dense(s, l, op);                               // NCHW, dense
        try
        {
            var t = New(s.DType, l.Count);
            t.Nhwc = dims;
            if (l.Count > 0)
                Context.Launch("layout", "nchw_to_nhwc_" + TransposeSfx(s.DType, op), TransposeGrid(dims), 256,
                    new KernelArgs().Add((long)dims.N).Add((long)dims.C).Add(dims.HW).Add(dense.Ptr).Add(t.Ptr));
            return new(t, owned: true);
        }
        finally { dense.Release(); }
    }

    /// <summary>
    /// A channels-last copy of a 4-d float32 or bf16 operand (the storage itself, with a reference added, when it already is
    /// one): what the network's input edge does, and what a benchmark uses to time an NHWC convolution without the edge.
    /// </summary>
    public Storage ToChannelsLast(StorageView v)
    {
        var n = NhwcIn(v, "to_channels_last");
        if (!ReferenceEquals(n.Storage, v.Storage) || v.Storage is not CudaStorage) return n.Storage;
        n.Storage.AddRef();
        return n.Storage;
    }

    /// <summary>A new channels-last storage for a logical [N, C, H, W] result.</summary>
    internal CudaStorage NewNhwc(DType t, int[] shape)
    {
        var s = New(t, Shapes.Count(shape));
        s.Nhwc = new NhwcDims(shape[0], shape[1], (long)shape[2] * shape[3]);
        return s;
    }

    /// <summary>A KCRS filter as KRSC (NHWC order), or back (<paramref name="toNhwc"/> false): always a new dense storage.</summary>
    CudaStorage FilterLayout(CudaStorage w, int[] shape, bool toNhwc, string op)
    {
        var d = new NhwcDims(shape[0], shape[1], (long)shape[2] * shape[3]);
        var r = New(w.DType, w.Length);
        if (w.Length > 0)
            Context.Launch("layout", (toNhwc ? "nchw_to_nhwc_" : "nhwc_to_nchw_") + TransposeSfx(w.DType, op), TransposeGrid(d), 256,
                new KernelArgs().Add((long)d.N).Add((long)d.C).Add(d.HW).Add(w.Ptr).Add(r.Ptr));
        return r;
    }

    /// <summary>
    /// Whether a same-shape pointwise op should run channels-last: every operand has the 4-d shape of the first, none
    /// is broadcast, and at least one is a whole channels-last storage (the others are then copied to NHWC). Element
    /// positions then match across the operands' raw [N, HW, C] memory, so the op runs on it as on a flat vector.
    /// </summary>
    bool PointwiseNhwc(params StorageView[] operands)
    {
        if (!Options.ChannelsLast || operands.Length == 0 || operands[0].Shape.Length != 4) return false;
        bool any = false;
        foreach (var v in operands)
        {
            if (!Shapes.Equal(v.Shape, operands[0].Shape) || !ChannelsLastFor(v.DType) || HasBroadcast(v.Layout)) return false;
            if (v.Storage is CudaStorage { Nhwc: not null } c && v.Layout.IsContiguous && v.Layout.Offset == 0 && v.Layout.Count == c.Length) any = true;
        }
        return any;
    }

    /// <summary>
    /// Runs a pointwise kernel on channels-last operands as flat vectors: <paramref name="launch"/> gets the element count,
    /// the flat layout argument, the operands' raw addresses and the output's; the output is channels-last.
    /// </summary>
    Storage RunPointwiseNhwc(StorageView[] operands, DType outType, string op, Action<long, Strided3, CuDevicePtr[], CuDevicePtr> launch)
    {
        var ins = new NhwcOperand[operands.Length];
        int made = 0;
        try
        {
            for (; made < operands.Length; made++) ins[made] = NhwcIn(operands[made], op);
            var y = NewNhwc(outType, operands[0].Shape);
            long n = y.Length;
            if (n > 0)
            {
                var flat = new int[] { 1 };
                var strides = Enumerable.Repeat(flat, operands.Length).ToArray();
                launch(n, Strided3.Make(op, [(int)n], strides), ins.Select(i => i.Ptr).ToArray(), y.Ptr);
            }
            return y;
        }
        finally { for (int i = 0; i < made; i++) ins[i].Dispose(); }
    }

    static bool HasBroadcast(Layout l)
    {
        for (int i = 0; i < l.Rank; i++) if (l.Strides[i] == 0 && l.Shape[i] > 1) return true;
        return false;
    }

    /// <summary>
    /// An activation operand's address in the pass's memory format: a dense NCHW storage, or (<paramref name="nhwc"/>) an
    /// NHWC one from <see cref="NhwcIn"/>; temporaries are released with <paramref name="owned"/>.
    /// </summary>
    CuDevicePtr Activation(StorageView v, bool nhwc, Owned owned, string op)
    {
        if (!nhwc) { var d = Dense(v.Storage, v.Layout, op); owned.Own(new Releaser(d)); return d.Ptr; }
        var n = NhwcIn(v, op);
        owned.Own(n);
        return n.Ptr;
    }

    /// <summary>Temporaries of one call, released together.</summary>
    sealed class Owned : IDisposable
    {
        readonly List<IDisposable> _items = new();
        public void Own(IDisposable d) => _items.Add(d);
        public void Dispose() { foreach (var d in _items) d.Dispose(); _items.Clear(); }
    }

    readonly struct Releaser(Storage s) : IDisposable { public void Dispose() => s.Release(); }

    /// <summary>A channels-last operand and whether it is a temporary copy this call must release.</summary>
    internal readonly struct NhwcOperand(CudaStorage storage, bool owned) : IDisposable
    {
        public CudaStorage Storage { get; } = storage;
        public CuDevicePtr Ptr => Storage.Ptr;
        public void Dispose() { if (owned) Storage.Release(); }
    }
}
