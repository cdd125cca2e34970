using MtlMoe.Engine.Amp;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// Cross-entropy of logits [N, C] against class labels [N] (Int64/Int32, each in [0, C)), PyTorch's
    /// semantics: −log softmax(logits)[label], with label smoothing ε the target is (1−ε)·onehot + ε/C.
    /// <paramref name="reduction"/>: "mean" (over N), "sum" or "none" (per-row losses [N]).
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels, string reduction = "mean", double labelSmoothing = 0)
    {
        using (var ac = AutocastArgs.For("cross_entropy", logits))
            if (ac.Changed) return CrossEntropy(ac.At(0), labels, reduction, labelSmoothing);
        CheckClassification("cross_entropy", logits, labels, reduction);
        if (labelSmoothing is < 0 or > 1 || double.IsNaN(labelSmoothing))
            throw new ArgumentException($"cross_entropy: label smoothing must be in [0, 1], got {labelSmoothing}");
        using var logp = LogSoftmax(logits, 1);
        using var nll = PickedNegLogProb(logp, labels); // [N]
        if (labelSmoothing == 0) return ReduceLoss(nll, reduction);
        // Smoothed: (1−ε)·nll + ε·mean_c(−log p_c).
        using var meanLogp = Mean(logp, [1]);
        using var a = MulScalar(nll, 1 - labelSmoothing);
        using var b = MulScalar(meanLogp, -labelSmoothing);
        using var per = Add(a, b);
        return ReduceLoss(per, reduction);
    }

    /// <summary>
    /// Negative log-likelihood of log-probabilities [N, C] at labels [N]: −logProbs[i, label_i], reduced
    /// by "mean" (over N), "sum" or "none".
    /// </summary>
    public static Tensor NllLoss(Tensor logProbs, Tensor labels, string reduction = "mean")
    {
        using (var ac = AutocastArgs.For("nll_loss", logProbs))
            if (ac.Changed) return NllLoss(ac.At(0), labels, reduction);
        CheckClassification("nll_loss", logProbs, labels, reduction);
        using var nll = PickedNegLogProb(logProbs, labels);
        return ReduceLoss(nll, reduction);
    }

    /// <summary>
    /// Smooth-L1 (Huber-like) loss, PyTorch's definition: with d = pred − target, 0.5·d²/β where |d| &lt; β,
    /// else |d| − 0.5·β (plain L1 when β = 0). Shapes broadcast; reduced by "mean", "sum" or "none".
    /// </summary>
    public static Tensor SmoothL1(Tensor pred, Tensor target, double beta = 1.0, string reduction = "mean")
    {
        using (var ac = AutocastArgs.For("smooth_l1_loss", pred, target))
            if (ac.Changed) return SmoothL1(ac.At(0), ac.At(1), beta, reduction);
        CheckReduction("smooth_l1", reduction);
        if (beta < 0 || double.IsNaN(beta)) throw new ArgumentException($"smooth_l1: beta must be ≥ 0, got {beta}");
        RequireFloat("smooth_l1", pred);
        using var d = Sub(pred, target);
        using var ad = Abs(d);
        if (beta == 0) return ReduceLoss(ad, reduction);
        using var d2 = Mul(d, d);
        using var quad = MulScalar(d2, 0.5 / beta);
        using var lin = AddScalar(ad, -0.5 * beta);
        using var small = LtScalar(ad, beta);
        using var per = Where(small, quad, lin);
        return ReduceLoss(per, reduction);
    }

    // −logp[i, labels[i]] as [N].
    private static Tensor PickedNegLogProb(Tensor logp, Tensor labels)
    {
        using var idx = labels.Unsqueeze(1);
        using var picked = Gather(logp, 1, idx);
        using var p = picked.Squeeze(1);
        return Neg(p);
    }

    private static void CheckClassification(string op, Tensor scores, Tensor labels, string reduction)
    {
        CheckReduction(op, reduction);
        RequireFloat(op, scores);
        if (scores.Rank != 2) throw new ShapeException($"{op}: input must be [N, C], got {Shapes.Format(scores.Shape)} (labels {Shapes.Format(labels.Shape)})");
        if (labels.Rank != 1) throw new ShapeException($"{op}: labels must be [N], got {Shapes.Format(labels.Shape)} (input {Shapes.Format(scores.Shape)})");
        if (labels.Shape[0] != scores.Shape[0])
            throw new ShapeException($"{op}: input {Shapes.Format(scores.Shape)} has {scores.Shape[0]} rows but labels {Shapes.Format(labels.Shape)} has {labels.Shape[0]}");
        CheckIndex(op, scores, labels, scores.Shape[1], $"{scores.Shape[1]} classes", "label");
    }

    private static void CheckReduction(string op, string reduction)
    {
        if (reduction is not ("mean" or "sum" or "none"))
            throw new ArgumentException($"{op}: reduction must be \"mean\", \"sum\" or \"none\", got \"{reduction}\"");
    }

    // Applies a reduction to per-element losses; "none" returns a new reference to the same values.
    private static Tensor ReduceLoss(Tensor per, string reduction) => reduction switch
    {
        "mean" => Mean(per),
        "sum" => Sum(per),
        _ => per.Reshape(per.Shape),
    };
}
