using System.Numerics;
using MtlMoe.Engine.Backends.Cpu.Conv;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;

namespace MtlMoe.Engine.Backends.Cpu;

// Conv2d: each pass builds a ConvPlan (shapes, dtype, this backend's options), asks the algorithm table
// (Conv/ConvAlgorithms.cs) for the algorithm and runs it. The algorithms, one file each, are in Conv/.
public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public Storage Conv2dForward(Storage x, Layout lx, Storage w, Layout lw, Conv2dGeometry geometry)
    {
        long t0 = ConvProfile.Start();
        var plan = new ConvPlan(lx.Shape, lw.Shape, geometry, x.DType, ConvOptionsFromSwitches());
        var r = x.DType switch
        {
            DType.Float32 => Conv<float>(ConvPass.Forward, x, lx, w, lw, plan),
            DType.Float64 => Conv<double>(ConvPass.Forward, x, lx, w, lw, plan),
            _ => throw new NotSupportedException($"conv2d: float tensors only, got {x.DType.Name()}"),
        };
        ConvProfile.Call("fwd", t0, lx.Shape, lw.Shape, geometry);
        return r;
    }

    /// <inheritdoc />
    public Storage Conv2dBackwardData(Storage dy, Layout ldy, Storage w, Layout lw, Conv2dGeometry geometry, int[] inputShape)
    {
        long t0 = ConvProfile.Start();
        var plan = new ConvPlan(inputShape, lw.Shape, geometry, dy.DType, ConvOptionsFromSwitches());
        var r = dy.DType switch
        {
            DType.Float32 => Conv<float>(ConvPass.BackwardData, dy, ldy, w, lw, plan),
            DType.Float64 => Conv<double>(ConvPass.BackwardData, dy, ldy, w, lw, plan),
            _ => throw new NotSupportedException($"conv2d backward: float tensors only, got {dy.DType.Name()}"),
        };
        ConvProfile.Call("bwd-data", t0, inputShape, lw.Shape, geometry);
        return r;
    }

    /// <inheritdoc />
    public Storage Conv2dBackwardWeight(Storage x, Layout lx, Storage dy, Layout ldy, Conv2dGeometry geometry, int[] weightShape)
    {
        long t0 = ConvProfile.Start();
        var plan = new ConvPlan(lx.Shape, weightShape, geometry, x.DType, ConvOptionsFromSwitches());
        var r = x.DType switch
        {
            DType.Float32 => Conv<float>(ConvPass.BackwardWeights, x, lx, dy, ldy, plan),
            DType.Float64 => Conv<double>(ConvPass.BackwardWeights, x, lx, dy, ldy, plan),
            _ => throw new NotSupportedException($"conv2d backward: float tensors only, got {x.DType.Name()}"),
        };
        ConvProfile.Call("bwd-weights", t0, lx.Shape, weightShape, geometry);
        return r;
    }

    // One pass of p: a is x (forward, backward-weights) or dy (backward-data); b is w (forward, backward-data) or dy.
    private static Storage Conv<T>(ConvPass pass, Storage a, Layout la, Storage b, Layout lb, ConvPlan p) where T : unmanaged, INumber<T>
    {
        int outLength = pass switch
        {
            ConvPass.Forward => p.N * p.O * p.OutPlane,  // y: [N, O, Ho, Wo]
            ConvPass.BackwardData => p.N * p.C * p.InPlane, // dx: [N, C, H, W]
            _ => p.O * p.K,                                // dw: [O, Cg, kh, kw]
        };
        if (p.OutPlane == 0 || p.N == 0) return NewStorage(a.DType, outLength, zero: true);
        var choice = ConvAlgorithms.Choose(p, pass);
        var algorithm = choice.Algorithm;
        var (aData, aOff) = NchwDense.Of<T>(a, la);
        var (bData, bOff) = NchwDense.Of<T>(b, lb);
        CpuStorage? flipped = null;
        if (choice.ViaForward && !algorithm.ReadsFlippedWeights)
        {
            // w′: [C, Og, kh, kw], the kernel flipped with its channels swapped, for an algorithm that reads w as stored.
            flipped = NewStorage(b.DType, p.O * p.K);
            long tf = ConvProfile.Start();
            KernelFlip.Flip(bData, bOff, flipped.Array<T>(), p);
            ConvProfile.Since("    weight flip", tf);
            (bData, bOff) = (flipped.Array<T>(), 0);
        }
        var output = NewStorage(a.DType, outLength, zero: algorithm.NeedsClearedOutput(choice.Pass));
        try
        {
            long t0 = ConvProfile.Start();
            var args = new ConvArgs<T>(aData, aOff, bData, bOff, output.Array<T>(), FlippedWeights: choice.ViaForward && flipped is null);
            algorithm.Run(choice.Plan, choice.Pass, args);
            ConvProfile.Since("    " + algorithm.Name, t0);
            return output;
        }
        catch
        {
            output.Release();
            throw;
        }
        finally { flipped?.Release(); }
    }

    // Transitional: the options of a conv call, read from the static switches (removed with the options commit).
    internal static CpuBackendOptions ConvOptionsFromSwitches()
    {
        var off = new List<string>();
        if (!ConvImplicit.Enabled) off.AddRange(["implicit-gemm", "implicit-gemm-stride2", "implicit-gemm-stride2-backward-data", "pointwise-stride2-gemm"]);
        if (!ConvImplicit.Stride2Enabled) off.Add("implicit-gemm-stride2");
        if (!ConvImplicit.Stride2BackwardDataEnabled) off.Add("implicit-gemm-stride2-backward-data");
        if (!ConvImplicit.PointwiseStride2Enabled) off.Add("pointwise-stride2-gemm");
        if (!ConvWeightGrad.Enabled) off.Add("blocked-backward-weights");
        if (!ConvBackwardDataAsForward) off.Add("backward-data-as-forward");
        if (!ConvTiledStrided1x1BackwardData) off.Add("tiled-strided-1x1-backward-data");
        if (!Im2ColPacked.Enabled) off.Add("im2col-packed");
        if (!Im2ColVec.Enabled) off.Add("im2col-vec");
        if (!Im2ColSameVec.Enabled) off.Add("im2col-same-vec");
        if (!Col2ImVec.Enabled) off.Add("col2im-vec");
        if (!FlipVec) off.Add("kernel-flip-vec");
        return new CpuBackendOptions
        {
            Threads = Threads, Disabled = new HashSet<string>(off),
            ConvTargetCols = ConvTargetCols, ConvMaxColElements = ConvMaxColElements, ConvTileElements = ConvTileElements,
            ConvTiledMinPlane = ConvTiledMinPlane, ImplicitMinLaneUse = ConvImplicit.MinLaneUse, ImplicitPackedBelow = ConvImplicit.PackedBelow,
            BlockedWeightsMinOutPlane = ConvWeightGrad.MinOutPlane, PointwiseStride2WeightsEverywhere = ConvImplicit.PointwiseStride2WeightsEverywhere,
        };
    }

    /// <summary>GEMM column count (nb·Ho·Wo) a chunk of images aims for (transitional switch).</summary>
    internal static int ConvTargetCols { get; set; } = 2048;
    /// <summary>Upper bound on the column scratch of one chunk, in elements (transitional switch).</summary>
    internal static int ConvMaxColElements { get; set; } = 1 << 22;
    /// <summary>Lets stride-1 backward-data run as a forward conv (transitional switch).</summary>
    internal static bool ConvBackwardDataAsForward { get; set; } = true;
    /// <summary>Whether the kernel flip uses AVX-512 lane reversals (transitional switch).</summary>
    internal static bool FlipVec { get; set; } = true;
    /// <summary>Elements of one thread's column tile (transitional switch).</summary>
    internal static int ConvTileElements { get; set; } = 1 << 17;
    /// <summary>Smallest output plane the tiled schedule is used for (transitional switch).</summary>
    internal static int ConvTiledMinPlane { get; set; } = 192;
    /// <summary>Whether strided 1×1 backward-data takes the tiled schedule at every plane size (transitional switch).</summary>
    internal static bool ConvTiledStrided1x1BackwardData { get; set; } = true;
}

/// <summary>Transitional: main's switches of the implicit-GEMM family (removed with the options commit).</summary>
internal static class ConvImplicit
{
    internal static bool Enabled { get; set; } = !EnvironmentVariables.ImplicitOff;
    internal static double MinLaneUse { get; set; } = 0.7;
    internal static bool Stride2Enabled { get; set; } = true;
    internal static bool Stride2BackwardDataEnabled { get; set; } = true;
    internal static bool PointwiseStride2Enabled { get; set; } = true;
    internal static bool PointwiseStride2WeightsEverywhere { get; set; }
    internal static double PackedBelow { get; set; } = 0.9;
}

/// <summary>Transitional: main's switches of the blocked backward-weights (removed with the options commit).</summary>
internal static class ConvWeightGrad
{
    internal static bool Enabled { get; set; } = !EnvironmentVariables.ImplicitOff;
    internal static int MinOutPlane { get; set; } = DefaultMinOutPlane;
    internal const int DefaultMinOutPlane = 7 * 7;
}
