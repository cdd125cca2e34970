using MtlMoe.Engine;
using MtlMoe.Engine.Autograd;
using MtlMoe.Model.Data;
using MtlMoe.Model.Net;

namespace MtlMoe.Model.Training;

/// <summary>Evaluates a network on a split: loss, top-1/top-5, box IoU, expert load and every image's prediction.</summary>
public static class Evaluator
{
    /// <summary>
    /// Runs <paramref name="net"/> (in eval mode, no gradients) over every batch of <paramref name="loader"/>
    /// (which must not shuffle) whose samples are <paramref name="samples"/>. <paramref name="cancel"/> stops it between batches.
    /// </summary>
    public static EvalResult Evaluate(MtlMoeNet net, CubLoader loader, IReadOnlyList<CubSample> samples, IReadOnlyList<string> classNames,
        int crop, int resize, LossOptions lossOptions, Device device, CancellationToken cancel = default, AmpMode amp = AmpMode.Off)
    {
        if (loader.Options.Shuffle) throw new ArgumentException("evaluate: the loader must keep the data-set order");
        bool wasTraining = net.Training;
        net.Eval();
        var byId = new Dictionary<int, CubSample>();
        foreach (var s in samples) byId[s.ImageId] = s;
        var predictions = new List<SamplePrediction>(samples.Count);
        int experts = net.Config.EffectiveExperts, k = net.Config.EffectiveK;
        var routed = new long[experts];
        double lossSum = 0;
        int n = 0, top1 = 0, top5 = 0, iou50 = 0;
        double iouSum = 0;
        try
        {
            using var noGrad = GradMode.NoGrad();
            foreach (var batch in loader.Epoch(0))
            {
                using var _ = batch;
                cancel.ThrowIfCancellationRequested();
                using var scope = DisposeScope.Begin();
                var x = batch.Images.Device == device ? batch.Images : batch.Images.To(device);       // [B, 3, R, R]
                var labels = batch.Labels.Device == device ? batch.Labels : batch.Labels.To(device);  // [B]
                var boxes = batch.Boxes.Device == device ? batch.Boxes : batch.Boxes.To(device);      // [B, 4]
                NetOutput output;
                LossParts parts;
                using (AmpModes.Enter(amp))
                {
                    output = net.Run(x);
                    parts = MultiTaskLoss.Compute(net, output, labels, boxes, lossOptions);
                }
                int b = batch.Count;
                lossSum += parts.Value * b;
                var logits = output.Logits.ToFloatArray();                 // [B·classes]
                var predBoxes = output.Boxes?.ToFloatArray();              // [B·4]
                var trueBoxes = batch.Boxes.ToFloatArray();
                var trueLabels = batch.Labels.ToLongArray();
                int classes = logits.Length / b;
                for (int r = 0; r < b; r++)
                {
                    var (top, probs) = TopFive(logits.AsSpan(r * classes, classes));
                    int label = (int)trueLabels[r];
                    if (top[0] == label) top1++;
                    if (Array.IndexOf(top, label) >= 0) top5++;
                    var tb = trueBoxes.AsSpan(4 * r, 4).ToArray();
                    var pb = predBoxes?.AsSpan(4 * r, 4).ToArray();
                    var ex = output.ExpertIndices.AsSpan(r * output.K, output.K).ToArray();
                    var gates = output.Gates.AsSpan(r * output.K, output.K).ToArray();
                    foreach (var e in ex) routed[e]++;
                    var id = batch.ImageIds[r];
                    var p = new SamplePrediction(id, byId.TryGetValue(id, out var s) ? s.FullPath : null, label, top, probs, tb, pb, ex, gates);
                    if (pb is not null) { double iou = p.IoU; iouSum += iou; if (iou >= 0.5) iou50++; }
                    predictions.Add(p);
                }
                n += b;
            }
        }
        finally { net.Train(wasTraining); }
        bool box = net.Config.HasBox;
        double ideal = (double)n * k / experts;
        return new EvalResult(lossSum / n, (double)top1 / n, (double)top5 / n,
            box ? iouSum / n : double.NaN, box ? (double)iou50 / n : double.NaN,
            routed.Select(r => r / ideal).ToArray(), predictions, classNames, crop, resize);
    }

    /// <summary>The (up to) five most probable classes of one row of logits with their softmax probabilities.</summary>
    public static (int[] Classes, double[] Probabilities) TopFive(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        var p = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < p.Length; i++) { p[i] = Math.Exp(logits[i] - max); sum += p[i]; }
        int m = Math.Min(5, p.Length);
        var idx = Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).ThenBy(i => i).Take(m).ToArray();
        return (idx, idx.Select(i => p[i] / sum).ToArray());
    }
}
