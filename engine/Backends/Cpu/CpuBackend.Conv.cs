using System.Numerics;
using MtlMoe.Engine.Backends.Cpu.Conv;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;

namespace MtlMoe.Engine.Backends.Cpu;

// Conv2d: each pass builds a ConvPlan (shapes, dtype, this backend's options), asks the algorithm table
// (Conv/ConvAlgorithms.cs) for the algorithm and runs it. The algorithms, one file each, are in Conv/.
public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public Storage Conv2dForward(StorageView xView, StorageView wView, Conv2dGeometry geometry)
    {
        var (x, lx) = xView;
        var (w, lw) = wView;
        long t0 = ConvProfile.Start();
        var plan = new ConvPlan(lx.Shape, lw.Shape, geometry, x.DType, Options);
        var r = x.DType switch
        {
            DType.Float32 => Conv<float>(ConvPass.Forward, x, lx, w, lw, plan),
            DType.Float64 => Conv<double>(ConvPass.Forward, x, lx, w, lw, plan),
            DType.BFloat16 => Conv2dForwardBf16(xView, wView, geometry),
            _ => throw Unsupported("conv2d", x.DType),
        };
        ConvProfile.Call("fwd", t0, lx.Shape, lw.Shape, geometry);
        return r;
    }

    /// <inheritdoc />
    public Storage Conv2dBackwardData(StorageView dyView, StorageView wView, Conv2dGeometry geometry, int[] inputShape)
    {
        var (dy, ldy) = dyView;
        var (w, lw) = wView;
        long t0 = ConvProfile.Start();
        var plan = new ConvPlan(inputShape, lw.Shape, geometry, dy.DType, Options);
        var r = dy.DType switch
        {
            DType.Float32 => Conv<float>(ConvPass.BackwardData, dy, ldy, w, lw, plan),
            DType.Float64 => Conv<double>(ConvPass.BackwardData, dy, ldy, w, lw, plan),
            DType.BFloat16 => Conv2dBackwardDataBf16(dyView, wView, geometry, inputShape),
            _ => throw Unsupported("conv2d backward", dy.DType),
        };
        ConvProfile.Call("bwd-data", t0, inputShape, lw.Shape, geometry);
        return r;
    }

    /// <inheritdoc />
    public Storage Conv2dBackwardWeight(StorageView xView, StorageView dyView, Conv2dGeometry geometry, int[] weightShape)
    {
        var (x, lx) = xView;
        var (dy, ldy) = dyView;
        long t0 = ConvProfile.Start();
        var plan = new ConvPlan(lx.Shape, weightShape, geometry, x.DType, Options);
        var r = x.DType switch
        {
            DType.Float32 => Conv<float>(ConvPass.BackwardWeights, x, lx, dy, ldy, plan),
            DType.Float64 => Conv<double>(ConvPass.BackwardWeights, x, lx, dy, ldy, plan),
            DType.BFloat16 => Conv2dBackwardWeightBf16(xView, dyView, geometry, weightShape),
            _ => throw Unsupported("conv2d backward", x.DType),
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
        var (aData, aOff) = NchwDense.Of<T>(p.Options, a, la);
        var (bData, bOff) = NchwDense.Of<T>(p.Options, b, lb);
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
}
