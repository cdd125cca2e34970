using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Tests.Support;
using static MtlMoe.Tests.Support.GradCheck;

namespace MtlMoe.Tests.ConvNorm;

/// <summary>Float64 finite-difference checks of conv2d's gradients (input, weight, bias).</summary>
public class ConvGradTests
{
    [Test] public void Stride1WithBias() => GradCheck.Assert("conv2d 3x3",
        x => Ops.Conv2d(x[0], x[1], x[2]), Rand([2, 3, 5, 5], 1), Rand([4, 3, 3, 3], 2), Rand([4], 3));

    [Test] public void Stride2Padding1NoBias() => GradCheck.Assert("conv2d stride 2 pad 1",
        x => Ops.Conv2d(x[0], x[1], stride: 2, padding: 1), Rand([2, 2, 7, 6], 4), Rand([3, 2, 3, 3], 5));

    [Test] public void Dilation2() => GradCheck.Assert("conv2d dilation 2",
        x => Ops.Conv2d(x[0], x[1], x[2], padding: 2, dilation: 2), Rand([1, 2, 6, 7], 6), Rand([2, 2, 3, 3], 7), Rand([2], 8));

    [Test] public void Groups2() => GradCheck.Assert("conv2d groups 2",
        x => Ops.Conv2d(x[0], x[1], x[2], padding: 1, groups: 2), Rand([2, 4, 5, 5], 9), Rand([6, 2, 3, 3], 10), Rand([6], 11));

    [Test] public void OneByOne() => GradCheck.Assert("conv2d 1x1",
        x => Ops.Conv2d(x[0], x[1], x[2]), Rand([2, 3, 4, 5], 12), Rand([5, 3, 1, 1], 13), Rand([5], 14));

    [Test] public void OneByOneStride2() => GradCheck.Assert("conv2d 1x1 stride 2",
        x => Ops.Conv2d(x[0], x[1], stride: 2), Rand([2, 3, 5, 5], 15), Rand([4, 3, 1, 1], 16));

    [Test] public void OddSizesNonSquareGeometry() => GradCheck.Assert("conv2d odd geometry",
        x => Ops.Conv2d(x[0], x[1], x[2], new Conv2dGeometry(StrideH: 2, StrideW: 1, PadH: 0, PadW: 2, DilationH: 1, DilationW: 2)),
        Rand([1, 3, 7, 5], 17), Rand([2, 3, 3, 2], 18), Rand([2], 19));

    [Test] public void NonContiguousInput() => GradCheck.Assert("conv2d permuted input",
        x => { using var xp = x[0].Permute(0, 2, 1, 3); return Ops.Conv2d(xp, x[1], x[2], padding: 1); },
        Rand([2, 5, 3, 4], 20), Rand([2, 3, 3, 3], 21), Rand([2], 22));

    [Test] public void NonContiguousWeight() => GradCheck.Assert("conv2d transposed weight",
        x => { using var wt = x[1].Transpose(0, 1); return Ops.Conv2d(x[0], wt); },
        Rand([1, 2, 4, 4], 23), Rand([2, 3, 2, 2], 24));
}
