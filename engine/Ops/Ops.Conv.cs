using MtlMoe.Engine.Amp;
using MtlMoe.Engine.Autograd;
using MtlMoe.Engine.Backends;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// 2-d convolution (cross-correlation, zero padding) with square stride, padding and dilation:
    /// x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O] → [N, O, Ho, Wo].
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
        => Conv2d(x, weight, bias, Conv2dGeometry.Square(stride, padding, dilation, groups));

    /// <summary>2-d convolution with a full geometry (per-dim stride, padding, dilation; groups).</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, Conv2dGeometry geometry)
    {
        using (var ac = AutocastArgs.For("conv2d", x, weight, bias))
            if (ac.Changed) return Conv2d(ac.At(0), ac.At(1), ac[2], geometry);
        var outShape = CheckConv2d(x, weight, bias, geometry);
        var inShape = (int[])x.Shape.Clone(); var wShape = (int[])weight.Shape.Clone();
        var y = Tensor.FromStorage(x.Backend.Conv2dForward(x.StorageView, weight.StorageView, geometry), outShape);
        Graph.Record(y, "conv2d", [x, weight], g =>
        {
            Tensor? dx = null, dw = null;
            if (x.RequiresGrad) dx = Tensor.FromStorage(g.Backend.Conv2dBackwardData(g.StorageView, weight.StorageView, geometry, inShape), inShape);
            if (weight.RequiresGrad) dw = Tensor.FromStorage(g.Backend.Conv2dBackwardWeight(x.StorageView, g.StorageView, geometry, wShape), wShape);
            return [dx, dw];
        });
        if (bias is null) return y;
        using (y)
        using (var b4 = bias.Reshape(1, bias.Shape[0], 1, 1))
            return Add(y, b4);
    }

    // Validates conv2d operands and returns the output shape; every message names the op and the shapes.
    private static int[] CheckConv2d(Tensor x, Tensor w, Tensor? b, Conv2dGeometry geo)
    {
        string Desc() => $"input {Shapes.Format(x.Shape)}, weight {Shapes.Format(w.Shape)}" + (b is null ? "" : $", bias {Shapes.Format(b.Shape)}") + $", {geo}";
        SameDevice("conv2d", x, w); SameDType("conv2d", x, w);
        RequireFloat("conv2d", x);
        if (x.Rank != 4) throw new ShapeException($"conv2d: input must be [N, C, H, W], got {Shapes.Format(x.Shape)}");
        if (w.Rank != 4) throw new ShapeException($"conv2d: weight must be [O, C/groups, kh, kw], got {Shapes.Format(w.Shape)}");
        if (geo.Groups < 1 || geo.StrideH < 1 || geo.StrideW < 1 || geo.DilationH < 1 || geo.DilationW < 1 || geo.PadH < 0 || geo.PadW < 0)
            throw new ShapeException($"conv2d: invalid geometry ({Desc()})");
        int c = x.Shape[1], o = w.Shape[0];
        if (c % geo.Groups != 0 || o % geo.Groups != 0)
            throw new ShapeException($"conv2d: {geo.Groups} groups must divide input channels {c} and output channels {o} ({Desc()})");
        if (c / geo.Groups != w.Shape[1])
            throw new ShapeException($"conv2d: input {Shapes.Format(x.Shape)} has {c} channels but weight {Shapes.Format(w.Shape)} expects {w.Shape[1] * geo.Groups} ({w.Shape[1]} per group × {geo.Groups} groups)");
        if (w.Shape[2] < 1 || w.Shape[3] < 1) throw new ShapeException($"conv2d: empty kernel ({Desc()})");
        if (b is not null)
        {
            SameDevice("conv2d", x, b); SameDType("conv2d", x, b);
            if (b.Rank != 1 || b.Shape[0] != o) throw new ShapeException($"conv2d: bias {Shapes.Format(b.Shape)} does not match weight {Shapes.Format(w.Shape)} ({o} output channels)");
        }
        int ho = geo.OutH(x.Shape[2], w.Shape[2]), wo = geo.OutW(x.Shape[3], w.Shape[3]);
        if (ho < 1 || wo < 1 || x.Shape[2] + 2 * geo.PadH < geo.DilationH * (w.Shape[2] - 1) + 1 || x.Shape[3] + 2 * geo.PadW < geo.DilationW * (w.Shape[3] - 1) + 1)
            throw new ShapeException($"conv2d: kernel larger than the padded input ({Desc()})");
        return [x.Shape[0], o, ho, wo];
    }
}
