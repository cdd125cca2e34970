using MtlMoe.Engine;
using MtlMoe.Model.Net;

namespace MtlMoe.Model.Training;

/// <summary>Settings of the multi-task loss.</summary>
/// <param name="LabelSmoothing">ε of the cross-entropy.</param>
/// <param name="LambdaLoc">Fixed weight of the box loss (ignored with learned weighting).</param>
/// <param name="SmoothL1Beta">β of the smooth-L1 part on normalised coordinates.</param>
public sealed record LossOptions(double LabelSmoothing = 0.1, double LambdaLoc = 1.0, double SmoothL1Beta = 0.05);

/// <summary>A computed loss: the total (in the graph) and its parts as numbers.</summary>
/// <param name="Total">Scalar tensor to back-propagate.</param>
/// <param name="Class">Cross-entropy value.</param>
/// <param name="Box">Smooth-L1 + GIoU value (0 without a box head).</param>
/// <param name="Aux">MoE aux loss value (0 without MoE).</param>
public sealed record LossParts(Tensor Total, double Class, double Box, double Aux)
{
    /// <summary>The total as a number.</summary>
    public double Value => Total.Item();
}

/// <summary>
/// L = CE(label smoothing) + λ_loc·(SmoothL1 + GIoU loss) + aux, or with learned uncertainty weighting
/// (Kendall et al. 2018) Σ exp(−sᵢ)·Lᵢ + sᵢ over the classification and box tasks, + aux.
/// </summary>
public static class MultiTaskLoss
{
    /// <summary>The loss of <paramref name="output"/> against labels [B] (int64) and boxes [B, 4] (normalised xyxy).</summary>
    public static LossParts Compute(MtlMoeNet net, NetOutput output, Tensor labels, Tensor boxes, LossOptions options)
    {
        var ce = Ops.CrossEntropy(output.Logits, labels, "mean", options.LabelSmoothing); // scalar
        double ceValue = ce.Item();
        Tensor total;
        double boxValue = 0;
        if (output.Boxes is not null)
        {
            var l1 = Ops.SmoothL1(output.Boxes, boxes, options.SmoothL1Beta, "mean");
            var giou = Ops.GIoULoss(output.Boxes, boxes, "mean");
            var box = Ops.Add(l1, giou);
            boxValue = box.Item();
            if (net.TaskWeights is { } tw)
            {
                using var ceShaped = ce.Reshape(1);
                using var boxShaped = box.Reshape(1);
                using var a = TaskWeights.Weigh(ceShaped, tw.SCls);
                using var b = TaskWeights.Weigh(boxShaped, tw.SBox);
                using var sum = Ops.Add(a, b);
                total = Ops.Sum(sum);
            }
            else
            {
                using var weighted = Ops.MulScalar(box, options.LambdaLoc);
                total = Ops.Add(ce, weighted);
            }
        }
        else if (net.TaskWeights is { } tw)
        {
            using var ceShaped = ce.Reshape(1);
            using var a = TaskWeights.Weigh(ceShaped, tw.SCls);
            total = Ops.Sum(a);
        }
        else total = ce;

        double auxValue = 0;
        if (output.AuxLoss is not null)
        {
            auxValue = output.AuxLoss.Item();
            total = Ops.Add(total, output.AuxLoss);
        }
        return new LossParts(total, ceValue, boxValue, auxValue);
    }
}
