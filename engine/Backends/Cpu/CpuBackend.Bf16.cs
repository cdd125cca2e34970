namespace MtlMoe.Engine.Backends.Cpu;

// bf16 storage on the CPU: the reference twins the CUDA bf16 kernels are tested against. Every twin does the same three
// things and nothing else: widen each bf16 operand to float32 (exact), run this backend's float32 primitive, and round
// each output that is an activation to bf16 once (round to nearest even, BFloat16Convert). Outputs the bf16 kernels keep
// in float32 stay float32: reductions, batch-norm statistics and parameter gradients, the combine's gate gradient.
// Float32 operands (batch-norm parameters and running statistics, the combine's gates) are passed through untouched, so
// in-place updates (running statistics) land in the caller's storage. Simple and slow on purpose: a second copy of every
// operand per call.
public sealed partial class CpuBackend
{
    /// <summary>A dense float32 copy of a bf16 view's elements (row-major in its shape).</summary>
    internal Storage WidenBf16(StorageView view)
    {
        var (src, layout) = view;
        if (src.DType != DType.BFloat16) throw new ArgumentException($"widen: expected a bf16 operand, got {src.DType.Name()}");
        var bits = Arr<BFloat16>(src);
        var s = NewStorage(DType.Float32, layout.Count);
        if (layout.IsContiguous) BFloat16Convert.ToFloat(bits.AsSpan(layout.Offset, layout.Count), s.Array<float>());
        else
        {
            var dense = new BFloat16[layout.Count];
            Gather(Options, bits, layout, dense);
            BFloat16Convert.ToFloat(dense, s.Array<float>());
        }
        return s;
    }

    /// <summary>Rounds a dense float32 storage to a new bf16 storage (nearest even) and releases the float32 one.</summary>
    internal Storage RoundToBf16(Storage f32)
    {
        try
        {
            if (f32.DType != DType.Float32) throw new ArgumentException($"round to bf16: expected a float32 result, got {f32.DType.Name()}");
            var s = NewStorage(DType.BFloat16, f32.Length);
            BFloat16Convert.FromFloat(Arr<float>(f32), s.Array<BFloat16>());
            return s;
        }
        finally { f32.Release(); }
    }

    /// <summary>The float32 stand-ins of one twin call's bf16 operands, released together.</summary>
    private sealed class Widened(CpuBackend backend) : IDisposable
    {
        private readonly List<Storage> _temps = new();

        /// <summary>A float32 view of <paramref name="v"/>: itself unless it is bf16, else a dense widened copy.</summary>
        public StorageView F32(StorageView v)
        {
            if (v.DType != DType.BFloat16) return v;
            var s = backend.WidenBf16(v);
            _temps.Add(s);
            return StorageView.Dense(s, v.Shape);
        }

        /// <summary><see cref="F32(StorageView)"/> for an optional operand.</summary>
        public StorageView? F32(StorageView? v) => v is { } x ? F32(x) : null;

        public void Dispose() { foreach (var s in _temps) s.Release(); }
    }

    private Storage UnaryBf16(UnaryOp op, StorageView x, double alpha, double beta)
    {
        using var w = new Widened(this);
        return RoundToBf16(Unary(op, w.F32(x), alpha, beta));
    }

    private Storage BinaryBf16(BinaryOp op, StorageView a, StorageView b)
    {
        using var w = new Widened(this);
        return RoundToBf16(Binary(op, w.F32(a), w.F32(b)));
    }

    // Sum/max/min: float32 results (max and min of bf16 values are exact in float32); argmax/argmin: int64.
    private Storage ReduceBf16(ReduceOp op, StorageView x, int[] dims)
    {
        using var w = new Widened(this);
        return Reduce(op, w.F32(x), dims);
    }

    private Storage ReluBackwardBf16(StorageView dy, StorageView y)
    {
        using var w = new Widened(this);
        return RoundToBf16(ReluBackward(w.F32(dy), w.F32(y)));
    }

    private Storage MatMulBf16(StorageView a, StorageView b)
    {
        RequireBothBf16("matmul", a, b);
        using var w = new Widened(this);
        return RoundToBf16(MatMul(w.F32(a), w.F32(b)));
    }

    private Storage Conv2dForwardBf16(StorageView x, StorageView wt, Conv2dGeometry g)
    {
        RequireBothBf16("conv2d", x, wt);
        using var w = new Widened(this);
        return RoundToBf16(Conv2dForward(w.F32(x), w.F32(wt), g));
    }

    private Storage Conv2dBackwardDataBf16(StorageView dy, StorageView wt, Conv2dGeometry g, int[] inputShape)
    {
        RequireBothBf16("conv2d backward", dy, wt);
        using var w = new Widened(this);
        return RoundToBf16(Conv2dBackwardData(w.F32(dy), w.F32(wt), g, inputShape));
    }

    private Storage Conv2dBackwardWeightBf16(StorageView x, StorageView dy, Conv2dGeometry g, int[] weightShape)
    {
        RequireBothBf16("conv2d backward", x, dy);
        using var w = new Widened(this);
        return RoundToBf16(Conv2dBackwardWeight(w.F32(x), w.F32(dy), g, weightShape));
    }

    // Batch-norm (every fused form): bf16 activations in and out; statistics, parameters and their gradients float32.
    private (Storage, Storage, Storage) BnTrainBf16(StorageView x, StorageView? weight, StorageView? bias, StorageView runningMean,
        StorageView runningVar, double momentum, double eps, bool relu, StorageView? residual, string op)
    {
        RequireFloat32Stats(op, runningMean, runningVar);
        using var w = new Widened(this);
        var (y, mean, invStd) = BnTrain(w.F32(x), w.F32(weight), w.F32(bias), runningMean, runningVar, momentum, eps, relu, w.F32(residual), op);
        return (RoundToBf16(y), mean, invStd);
    }

    private Storage BnEvalBf16(StorageView x, StorageView? weight, StorageView? bias, StorageView runningMean, StorageView runningVar, double eps)
    {
        using var w = new Widened(this);
        return RoundToBf16(BatchNorm2dEvalForward(w.F32(x), w.F32(weight), w.F32(bias), w.F32(runningMean), w.F32(runningVar), eps));
    }

    private (Storage, Storage, Storage) BnBackBf16(StorageView dy, StorageView x, StorageView mean, StorageView invStd, StorageView? weight,
        bool batchStats, StorageView? reluY, string op)
    {
        using var w = new Widened(this);
        var (dx, dw, db) = BnBack(w.F32(dy), w.F32(x), w.F32(mean), w.F32(invStd), w.F32(weight), batchStats, w.F32(reluY), op);
        return (RoundToBf16(dx), dw, db);
    }

    private Storage SoftmaxBf16(StorageView x, int dim, bool log)
    {
        using var w = new Widened(this);
        return RoundToBf16(Softmax(w.F32(x), dim, log));
    }

    private (Storage, Storage) MaxPool2dForwardBf16(StorageView x, Pool2dGeometry g)
    {
        using var w = new Widened(this);
        var (y, idx) = MaxPool2dForward(w.F32(x), g);
        return (RoundToBf16(y), idx);
    }

    private Storage MaxPool2dBackwardBf16(StorageView dy, StorageView indices, int[] inputShape)
    {
        using var w = new Widened(this);
        return RoundToBf16(MaxPool2dBackward(w.F32(dy), indices, inputShape));
    }

    private Storage AvgPool2dForwardBf16(StorageView x, Pool2dGeometry g)
    {
        using var w = new Widened(this);
        return RoundToBf16(AvgPool2dForward(w.F32(x), g));
    }

    private Storage AvgPool2dBackwardBf16(StorageView dy, Pool2dGeometry g, int[] inputShape)
    {
        using var w = new Widened(this);
        return RoundToBf16(AvgPool2dBackward(w.F32(dy), g, inputShape));
    }

    private Storage AdaptiveAvgPool2dForwardBf16(StorageView x, int outH, int outW)
    {
        using var w = new Widened(this);
        return RoundToBf16(AdaptiveAvgPool2dForward(w.F32(x), outH, outW));
    }

    private Storage AdaptiveAvgPool2dBackwardBf16(StorageView dy, int[] inputShape)
    {
        using var w = new Widened(this);
        return RoundToBf16(AdaptiveAvgPool2dBackward(w.F32(dy), inputShape));
    }

    private (Storage, Storage) TopKBf16(StorageView x, int dim, int k, bool largest)
    {
        using var w = new Widened(this);
        var (values, indices) = TopK(w.F32(x), dim, k, largest);
        return (RoundToBf16(values), indices);
    }

    private Storage GatherBf16(StorageView x, int dim, StorageView index)
    {
        using var w = new Widened(this);
        return RoundToBf16(Gather(w.F32(x), dim, index));
    }

    private Storage ScatterAddBf16(StorageView x, int dim, StorageView index, StorageView src)
    {
        RequireBothBf16("scatter_add", x, src);
        using var w = new Widened(this);
        return RoundToBf16(ScatterAdd(w.F32(x), dim, index, w.F32(src)));
    }

    private Storage MoeDispatchBf16(StorageView x, Storage sourceRow, int rows)
    {
        using var w = new Widened(this);
        return RoundToBf16(MoeDispatch(w.F32(x), sourceRow, rows));
    }

    private Storage MoeDispatchBackwardBf16(StorageView gradBuffer, Storage slotOf, int batch, int k)
    {
        using var w = new Widened(this);
        return RoundToBf16(MoeDispatchBackward(w.F32(gradBuffer), slotOf, batch, k));
    }

    // Combine: bf16 expert outputs, float32 gates (autocast keeps the gating in float32); output bf16.
    private Storage MoeCombineBf16(StorageView y, StorageView gates, Storage topIndices, Storage slotOf, int k)
    {
        RequireFloat32Gates("moe_combine", gates);
        using var w = new Widened(this);
        return RoundToBf16(MoeCombine(w.F32(y), gates, topIndices, slotOf, k));
    }

    // Combine backward: the expert outputs' gradient bf16, the gates' gradient float32.
    private (Storage, Storage) MoeCombineBackwardBf16(StorageView gradOut, StorageView y, StorageView gates, Storage topIndices, Storage slotOf, int k)
    {
        RequireFloat32Gates("moe_combine backward", gates);
        using var w = new Widened(this);
        var (gradY, gradGates) = MoeCombineBackward(w.F32(gradOut), w.F32(y), gates, topIndices, slotOf, k);
        return (RoundToBf16(gradY), gradGates);
    }

    private static void RequireBothBf16(string op, StorageView a, StorageView b)
    {
        if (a.DType != b.DType)
            throw new InvalidOperationException($"{op}: dtypes {a.DType.Name()} {Shapes.Format(a.Shape)} and {b.DType.Name()} {Shapes.Format(b.Shape)} differ; cast one with To(DType)");
    }

    private static void RequireFloat32Stats(string op, StorageView runningMean, StorageView runningVar)
    {
        if (runningMean.DType != DType.Float32 || runningVar.DType != DType.Float32)
            throw new NotSupportedException($"{op}: a bf16 input needs float32 running statistics (they are updated in place), got {runningMean.DType.Name()} and {runningVar.DType.Name()}");
    }

    private static void RequireFloat32Gates(string op, StorageView gates)
    {
        if (gates.DType != DType.Float32)
            throw new NotSupportedException($"{op}: bf16 expert outputs take float32 gates, got {gates.DType.Name()} {Shapes.Format(gates.Shape)}");
    }
}
