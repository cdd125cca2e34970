using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.Backends;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// Max pooling over x [N, C, H, W] with a square window; stride ≤ 0 means stride = kernel; padding
    /// (at most kernel/2) counts as −∞; floor mode. The gradient goes to the first maximum of each window.
    /// </summary>
    public static Tensor MaxPool2d(Tensor x, int kernel, int stride = -1, int padding = 0)
    {
        var geo = Pool2dGeometry.Square(kernel, stride, padding);
        var outShape = CheckPool2d("max_pool2d", x, geo);
        var inShape = (int[])x.Shape.Clone();
        var (vs, ixs) = x.Backend.MaxPool2dForward(x.StorageView, geo);
        var y = Tensor.FromStorage(vs, outShape);
        var indices = Tensor.FromStorage(ixs, outShape);
        if (!Graph.ShouldRecord([x])) { indices.Dispose(); return y; }
        Graph.Record(y, "max_pool2d", [x], g =>
            [Tensor.FromStorage(g.Backend.MaxPool2dBackward(g.StorageView, indices.StorageView, inShape), inShape)],
            saved: [indices]);
        indices.Dispose(); // deferred by the graph until the backward has run
        return y;
    }

    /// <summary>
    /// Average pooling over x [N, C, H, W] with a square window; stride ≤ 0 means stride = kernel; padding
    /// (at most kernel/2) counts as zeros and in the divisor (count_include_pad); floor mode.
    /// </summary>
    public static Tensor AvgPool2d(Tensor x, int kernel, int stride = -1, int padding = 0)
    {
        var geo = Pool2dGeometry.Square(kernel, stride, padding);
        var outShape = CheckPool2d("avg_pool2d", x, geo);
        var inShape = (int[])x.Shape.Clone();
        var y = Tensor.FromStorage(x.Backend.AvgPool2dForward(x.StorageView, geo), outShape);
        Graph.Record(y, "avg_pool2d", [x], g =>
            [Tensor.FromStorage(g.Backend.AvgPool2dBackward(g.StorageView, geo, inShape), inShape)]);
        return y;
    }

    /// <summary>
    /// Adaptive average pooling of x [N, C, H, W] to [N, C, outH, outW]; bin i spans
    /// [⌊i·H/outH⌋, ⌈(i+1)·H/outH⌉), so bins may overlap when the size does not divide.
    /// </summary>
    public static Tensor AdaptiveAvgPool2d(Tensor x, int outH, int outW)
    {
        RequireFloat("adaptive_avg_pool2d", x);
        if (x.Rank != 4) throw new ShapeException($"adaptive_avg_pool2d: input must be [N, C, H, W], got {Shapes.Format(x.Shape)}");
        if (outH < 1 || outW < 1) throw new ShapeException($"adaptive_avg_pool2d: output size ({outH}, {outW}) must be positive (input {Shapes.Format(x.Shape)})");
        if (x.Shape[2] < 1 || x.Shape[3] < 1) throw new ShapeException($"adaptive_avg_pool2d: empty spatial dims in input {Shapes.Format(x.Shape)}");
        var inShape = (int[])x.Shape.Clone();
        int[] outShape = [x.Shape[0], x.Shape[1], outH, outW];
        var y = Tensor.FromStorage(x.Backend.AdaptiveAvgPool2dForward(x.StorageView, outH, outW), outShape);
        Graph.Record(y, "adaptive_avg_pool2d", [x], g =>
            [Tensor.FromStorage(g.Backend.AdaptiveAvgPool2dBackward(g.StorageView, inShape), inShape)]);
        return y;
    }

    private static int[] CheckPool2d(string op, Tensor x, Pool2dGeometry geo)
    {
        RequireFloat(op, x);
        if (x.Rank != 4) throw new ShapeException($"{op}: input must be [N, C, H, W], got {Shapes.Format(x.Shape)}");
        if (geo.KernelH < 1 || geo.KernelW < 1 || geo.StrideH < 1 || geo.StrideW < 1 || geo.PadH < 0 || geo.PadW < 0)
            throw new ShapeException($"{op}: invalid window ({geo}) for input {Shapes.Format(x.Shape)}");
        if (2 * geo.PadH > geo.KernelH || 2 * geo.PadW > geo.KernelW)
            throw new ShapeException($"{op}: padding must be at most half the kernel ({geo}) for input {Shapes.Format(x.Shape)}");
        int ho = geo.OutH(x.Shape[2]), wo = geo.OutW(x.Shape[3]);
        if (x.Shape[2] + 2 * geo.PadH < geo.KernelH || x.Shape[3] + 2 * geo.PadW < geo.KernelW || ho < 1 || wo < 1)
            throw new ShapeException($"{op}: window ({geo}) larger than the padded input {Shapes.Format(x.Shape)}");
        return [x.Shape[0], x.Shape[1], ho, wo];
    }
}
