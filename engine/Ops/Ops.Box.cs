namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// Guard added to the denominators of IoU and GIoU (the union and the enclosing box's area) so that
    /// degenerate boxes give a finite value and gradient; the same 1e-7 torchvision's GIoU loss uses.
    /// </summary>
    public const double BoxEpsilon = 1e-7;

    /// <summary>
    /// Intersection-over-union of boxes paired element-wise: a and b are [..., 4] as (x0, y0, x1, y1)
    /// (leading dims broadcast); the result is [...]. IoU = |A∩B| / (|A∪B| + <see cref="BoxEpsilon"/>). Differentiable.
    /// </summary>
    public static Tensor BoxIoU(Tensor a, Tensor b)
    {
        using var p = new BoxPair("box_iou", a, b);
        return Div(p.Inter, p.UnionEps);
    }

    /// <summary>
    /// Generalized IoU (Rezatofighi et al. 2019) of boxes paired element-wise, [..., 4] as (x0, y0, x1, y1):
    /// IoU − (|C| − |A∪B|) / |C|, C the smallest box enclosing both; in (−1, 1], negative for distant
    /// disjoint boxes. Denominators carry <see cref="BoxEpsilon"/>. Differentiable.
    /// </summary>
    public static Tensor GeneralizedBoxIoU(Tensor a, Tensor b)
    {
        using var p = new BoxPair("generalized_box_iou", a, b);
        using var iou = Div(p.Inter, p.UnionEps);
        using var ex0 = Minimum(p.Ax0, p.Bx0); using var ey0 = Minimum(p.Ay0, p.By0);
        using var ex1 = Maximum(p.Ax1, p.Bx1); using var ey1 = Maximum(p.Ay1, p.By1);
        using var ew = Sub(ex1, ex0); using var eh = Sub(ey1, ey0);
        using var ewc = Clamp(ew, 0); using var ehc = Clamp(eh, 0);
        using var enclosing = Mul(ewc, ehc);
        using var gap = Sub(enclosing, p.Union);
        using var encEps = AddScalar(enclosing, BoxEpsilon);
        using var frac = Div(gap, encEps);
        return Sub(iou, frac);
    }

    /// <summary>GIoU loss 1 − GIoU(pred, target), reduced by "mean", "sum" or "none" (then [...]).</summary>
    public static Tensor GIoULoss(Tensor pred, Tensor target, string reduction = "mean")
    {
        using (var ac = Amp.AutocastArgs.For("giou_loss", pred, target))
            if (ac.Changed) return GIoULoss(ac.At(0), ac.At(1), reduction);
        CheckReduction("giou_loss", reduction);
        using var g = GeneralizedBoxIoU(pred, target);
        using var per = RSubScalar(g, 1);
        return ReduceLoss(per, reduction);
    }

    /// <summary>(cx, cy, w, h) → (x0, y0, x1, y1) in the last dim of size 4.</summary>
    public static Tensor BoxCxCyWhToXyXy(Tensor t)
    {
        CheckBoxes("box_cxcywh_to_xyxy", t);
        using var c = t.Narrow(-1, 0, 2);  // [..., 2] centre
        using var s = t.Narrow(-1, 2, 2);  // [..., 2] size
        using var h = MulScalar(s, 0.5);
        using var lo = Sub(c, h); using var hi = Add(c, h);
        return Concat([lo, hi], -1);
    }

    /// <summary>(x0, y0, x1, y1) → (cx, cy, w, h) in the last dim of size 4.</summary>
    public static Tensor BoxXyXyToCxCyWh(Tensor t)
    {
        CheckBoxes("box_xyxy_to_cxcywh", t);
        using var lo = t.Narrow(-1, 0, 2);
        using var hi = t.Narrow(-1, 2, 2);
        using var sum = Add(lo, hi);
        using var c = MulScalar(sum, 0.5);
        using var s = Sub(hi, lo);
        return Concat([c, s], -1);
    }

    private static void CheckBoxes(string op, Tensor t)
    {
        if (t.Rank == 0 || t.Shape[^1] != 4) throw new ShapeException($"{op}: boxes must be [..., 4], got {Shapes.Format(t.Shape)}");
        RequireFloat(op, t);
    }

    /// <summary>Coordinates, areas, intersection and union of two broadcast box tensors; disposes them all.</summary>
    private sealed class BoxPair : IDisposable
    {
        public readonly Tensor Ax0, Ay0, Ax1, Ay1, Bx0, By0, Bx1, By1, Inter, Union, UnionEps;
        private readonly List<Tensor> _all = new();

        public BoxPair(string op, Tensor a, Tensor b)
        {
            CheckBoxes(op, a); CheckBoxes(op, b);
            SameDType(op, a, b); SameDevice(op, a, b);
            Shapes.Broadcast(a.Shape, b.Shape, op);
            Tensor Keep(Tensor t) { _all.Add(t); return t; }
            Tensor Coord(Tensor t, int i) { using var n = t.Narrow(-1, i, 1); return Keep(n.Squeeze(-1)); }
            Ax0 = Coord(a, 0); Ay0 = Coord(a, 1); Ax1 = Coord(a, 2); Ay1 = Coord(a, 3);
            Bx0 = Coord(b, 0); By0 = Coord(b, 1); Bx1 = Coord(b, 2); By1 = Coord(b, 3);
            var areaA = Keep(Mul(Keep(Sub(Ax1, Ax0)), Keep(Sub(Ay1, Ay0))));
            var areaB = Keep(Mul(Keep(Sub(Bx1, Bx0)), Keep(Sub(By1, By0))));
            // Overlap extents, zero when the boxes are apart.
            var iw = Keep(Clamp(Keep(Sub(Keep(Minimum(Ax1, Bx1)), Keep(Maximum(Ax0, Bx0)))), 0));
            var ih = Keep(Clamp(Keep(Sub(Keep(Minimum(Ay1, By1)), Keep(Maximum(Ay0, By0)))), 0));
            Inter = Keep(Mul(iw, ih));
            Union = Keep(Sub(Keep(Add(areaA, areaB)), Inter));
            UnionEps = Keep(AddScalar(Union, BoxEpsilon));
        }

        public void Dispose() { foreach (var t in _all) t.Dispose(); }
    }
}
