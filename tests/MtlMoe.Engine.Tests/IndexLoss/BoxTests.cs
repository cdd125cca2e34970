using MtlMoe.Engine;
using MtlMoe.Tests.Support;

namespace MtlMoe.Tests.IndexLoss;

public class BoxTests
{
    private static Tensor Box(params double[] v) => Tensor.FromArray(v, [v.Length / 4, 4]);

    // Random (cx, cy, w, h) in [0.3, 1] → valid xyxy boxes; shifted by `dx` in x.
    private static Tensor Boxes(Tensor cxcywh, double dx = 0)
    {
        var b = Ops.BoxCxCyWhToXyXy(cxcywh);
        if (dx == 0) return b;
        using (b)
        {
            using var shift = Tensor.FromArray(new[] { dx, 0, dx, 0 });
            return Ops.Add(b, shift);
        }
    }

    [Test]
    public void IoUGrad() => GradCheck.Assert("box_iou", x =>
    {
        using var a = Boxes(x[0]); using var b = Boxes(x[1]);
        return Ops.BoxIoU(a, b);
    }, GradCheck.Rand([6, 4], 301, 0.3, 1), GradCheck.Rand([6, 4], 302, 0.3, 1));

    [Test]
    public void GIoUGradOverlapping() => GradCheck.Assert("generalized_box_iou", x =>
    {
        using var a = Boxes(x[0]); using var b = Boxes(x[1]);
        return Ops.GeneralizedBoxIoU(a, b);
    }, GradCheck.Rand([6, 4], 303, 0.3, 1), GradCheck.Rand([6, 4], 304, 0.3, 1));

    [Test]
    public void GIoUGradDisjoint() => GradCheck.Assert("generalized_box_iou disjoint", x =>
    {
        using var a = Boxes(x[0]); using var b = Boxes(x[1], dx: 3);
        return Ops.GeneralizedBoxIoU(a, b);
    }, GradCheck.Rand([5, 4], 305, 0.3, 1), GradCheck.Rand([5, 4], 306, 0.3, 1));

    [Test]
    public void GIoULossGradNonContiguous() => GradCheck.Assert("giou_loss", x =>
    {
        using var a = Boxes(x[0].T); using var b = Boxes(x[1]);
        return Ops.GIoULoss(a, b, "sum");
    }, GradCheck.Rand([4, 5], 307, 0.3, 1), GradCheck.Rand([5, 4], 308, 0.3, 1));

    [Test]
    public void ConvertersGrad()
    {
        GradCheck.Assert("box_cxcywh_to_xyxy", x => Ops.BoxCxCyWhToXyXy(x[0]), GradCheck.Rand([2, 3, 4], 309));
        GradCheck.Assert("box_xyxy_to_cxcywh", x => Ops.BoxXyXyToCxCyWh(x[0].Permute(1, 0)), GradCheck.Rand([4, 3], 310));
    }

    [Test]
    public void IoUAndGIoUOfKnownBoxes()
    {
        using var a = Box(0, 0, 2, 2, 0, 0, 1, 1, 0, 0, 2, 2);
        using var b = Box(1, 1, 3, 3, 2, 0, 3, 1, 0, 0, 2, 2);
        var iou = Ops.BoxIoU(a, b).ToDoubleArray();
        Assert.That(iou, Is.EqualTo(new[] { 1.0 / 7, 0, 1 }).Within(1e-6));
        var giou = Ops.GeneralizedBoxIoU(a, b).ToDoubleArray();
        // Overlap: C = 3×3, |A∪B| = 7. Disjoint: C = 3×1, |A∪B| = 2 → 0 − 1/3.
        Assert.That(giou, Is.EqualTo(new[] { 1.0 / 7 - 2.0 / 9, -1.0 / 3, 1 }).Within(1e-6));
        Assert.That(giou[1], Is.LessThan(0));
        Assert.That(Ops.GIoULoss(a, b, "none").ToDoubleArray(), Is.EqualTo(giou.Select(g => 1 - g).ToArray()).Within(1e-12));
        Assert.That(Ops.GIoULoss(a, b).Item(), Is.EqualTo(giou.Average(g => 1 - g)).Within(1e-12));
    }

    [Test]
    public void IoUBroadcastsLeadingDims()
    {
        using var a = Box(0, 0, 2, 2);                   // [1, 4]
        using var b = Box(1, 1, 3, 3, 0, 0, 1, 1);       // [2, 4]
        var v = Ops.BoxIoU(a, b);
        Assert.That(v.Shape, Is.EqualTo(new[] { 2 }));
        Assert.That(v.ToDoubleArray(), Is.EqualTo(new[] { 1.0 / 7, 0.25 }).Within(1e-6));
    }

    [Test]
    public void DegenerateBoxesStayFinite()
    {
        using var a = Box(1, 1, 1, 1);
        Assert.That(Ops.GeneralizedBoxIoU(a, a).Item(), Is.Not.NaN);
    }

    [Test]
    public void ConvertersRoundTrip()
    {
        using var c = Box(0.5, 0.5, 1, 2);
        using var x = Ops.BoxCxCyWhToXyXy(c);
        Assert.That(x.ToDoubleArray(), Is.EqualTo(new[] { 0, -0.5, 1, 1.5 }));
        Assert.That(Ops.BoxXyXyToCxCyWh(x).ToDoubleArray(), Is.EqualTo(c.ToDoubleArray()));
    }

    [Test]
    public void BadBoxShapeNamesOp()
    {
        using var a = Tensor.Zeros([2, 3]);
        using var b = Tensor.Zeros([2, 4]);
        var e = Assert.Throws<ShapeException>(() => Ops.BoxIoU(a, b));
        Assert.That(e!.Message, Does.Contain("box_iou").And.Contain("[2, 3]"));
        using var c = Tensor.Zeros([3, 4]);
        e = Assert.Throws<ShapeException>(() => Ops.GeneralizedBoxIoU(b, c));
        Assert.That(e!.Message, Does.Contain("generalized_box_iou").And.Contain("[2, 4]").And.Contain("[3, 4]"));
    }
}
