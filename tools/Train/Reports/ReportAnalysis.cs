using MtlMoe.Model.Training;

namespace MtlMoe.Train.Reports;

/// <summary>Test accuracy of one class.</summary>
/// <param name="ClassIndex">0-based class.</param>
/// <param name="Name">Class name.</param>
/// <param name="Correct">Test images of the class predicted correctly (top-1).</param>
/// <param name="Support">Test images of the class.</param>
public sealed record ClassAccuracy(int ClassIndex, string Name, int Correct, int Support)
{
    /// <summary>Correct / Support (NaN when the class has no test images).</summary>
    public double Accuracy => Support == 0 ? double.NaN : (double)Correct / Support;
}

/// <summary>An off-diagonal cell of the confusion matrix.</summary>
/// <param name="TrueClass">0-based true class.</param>
/// <param name="PredictedClass">0-based predicted (top-1) class.</param>
/// <param name="Count">Test images of <paramref name="TrueClass"/> predicted as <paramref name="PredictedClass"/>.</param>
/// <param name="Support">Test images of <paramref name="TrueClass"/>.</param>
public sealed record ConfusedPair(int TrueClass, int PredictedClass, int Count, int Support)
{
    /// <summary>Count / Support.</summary>
    public double Share => Support == 0 ? 0 : (double)Count / Support;
}

/// <summary>A class among those routed to an expert.</summary>
/// <param name="ClassIndex">0-based class.</param>
/// <param name="Routed">Test images of the class routed to the expert.</param>
/// <param name="Support">Test images of the class.</param>
/// <param name="Correct">Of the routed ones, how many were classified correctly.</param>
public sealed record RoutedClass(int ClassIndex, int Routed, int Support, int Correct)
{
    /// <summary>Correct / Routed.</summary>
    public double Accuracy => Routed == 0 ? double.NaN : (double)Correct / Routed;
}

/// <summary>What one expert received.</summary>
/// <param name="Expert">0-based expert.</param>
/// <param name="Routed">Test images routed to it (it was among their k experts).</param>
/// <param name="MeanGate">Mean gate value it got over those images (NaN when none).</param>
/// <param name="TopRouted">Images for which it had the highest gate.</param>
/// <param name="Accuracy">Top-1 accuracy on the images routed to it (NaN when none).</param>
/// <param name="TopClasses">Classes with the most images routed to it, most first (at most 3).</param>
public sealed record ExpertSpecialisation(int Expert, int Routed, double MeanGate, int TopRouted, double Accuracy, IReadOnlyList<RoutedClass> TopClasses);

/// <summary>Pure computations over an <see cref="EvalResult"/> for the run report.</summary>
public static class ReportAnalysis
{
    /// <summary>[true, predicted] counts of top-1 predictions (classes outside the name list are ignored).</summary>
    public static int[,] ConfusionMatrix(EvalResult eval)
    {
        int n = eval.ClassNames.Count;
        var m = new int[n, n];
        foreach (var s in eval.Samples)
            if ((uint)s.TrueClass < (uint)n && s.Top5.Length > 0 && (uint)s.PredictedClass < (uint)n) m[s.TrueClass, s.PredictedClass]++;
        return m;
    }

    /// <summary>Every class with at least one test image, worst accuracy first (ties: more support first, then index).</summary>
    public static IReadOnlyList<ClassAccuracy> PerClassAccuracy(EvalResult eval)
    {
        var m = ConfusionMatrix(eval);
        int n = eval.ClassNames.Count;
        var list = new List<ClassAccuracy>();
        for (int c = 0; c < n; c++)
        {
            int support = 0;
            for (int p = 0; p < n; p++) support += m[c, p];
            if (support > 0) list.Add(new ClassAccuracy(c, eval.ClassNames[c], m[c, c], support));
        }
        return list.OrderBy(a => a.Accuracy).ThenByDescending(a => a.Support).ThenBy(a => a.ClassIndex).ToList();
    }

    /// <summary>The <paramref name="count"/> largest off-diagonal confusion cells (ties: lower true, then predicted index).</summary>
    public static IReadOnlyList<ConfusedPair> MostConfused(EvalResult eval, int count = 10)
    {
        var m = ConfusionMatrix(eval);
        int n = eval.ClassNames.Count;
        var support = new int[n];
        for (int t = 0; t < n; t++) for (int p = 0; p < n; p++) support[t] += m[t, p];
        var pairs = new List<ConfusedPair>();
        for (int t = 0; t < n; t++)
            for (int p = 0; p < n; p++)
                if (t != p && m[t, p] > 0) pairs.Add(new ConfusedPair(t, p, m[t, p], support[t]));
        return pairs.OrderByDescending(x => x.Count).ThenBy(x => x.TrueClass).ThenBy(x => x.PredictedClass).Take(count).ToList();
    }

    /// <summary>Per-expert routing statistics for experts 0 … <paramref name="numExperts"/> − 1.</summary>
    public static IReadOnlyList<ExpertSpecialisation> Experts(EvalResult eval, int numExperts)
    {
        int n = eval.ClassNames.Count;
        var support = new int[n];
        foreach (var s in eval.Samples) if ((uint)s.TrueClass < (uint)n) support[s.TrueClass]++;
        var result = new List<ExpertSpecialisation>();
        for (int e = 0; e < numExperts; e++)
        {
            int routed = 0, top = 0, correct = 0;
            double gateSum = 0;
            var byClass = new Dictionary<int, (int Routed, int Correct)>();
            foreach (var s in eval.Samples)
            {
                int slot = Array.IndexOf(s.Experts, e);
                if (slot < 0) continue;
                routed++;
                gateSum += slot < s.Gates.Length ? s.Gates[slot] : double.NaN;
                if (HighestGateExpert(s) == e) top++;
                bool ok = s.Top5.Length > 0 && s.PredictedClass == s.TrueClass;
                if (ok) correct++;
                byClass.TryGetValue(s.TrueClass, out var c);
                byClass[s.TrueClass] = (c.Routed + 1, c.Correct + (ok ? 1 : 0));
            }
            var topClasses = byClass.OrderByDescending(kv => kv.Value.Routed).ThenBy(kv => kv.Key).Take(3)
                .Select(kv => new RoutedClass(kv.Key, kv.Value.Routed, (uint)kv.Key < (uint)n ? support[kv.Key] : 0, kv.Value.Correct)).ToList();
            result.Add(new ExpertSpecialisation(e, routed, routed == 0 ? double.NaN : gateSum / routed, top,
                routed == 0 ? double.NaN : (double)correct / routed, topClasses));
        }
        return result;
    }

    /// <summary>The gate <paramref name="expert"/> got for <paramref name="s"/> (NaN when not routed there).</summary>
    public static double GateOf(SamplePrediction s, int expert)
    {
        int slot = Array.IndexOf(s.Experts, expert);
        return slot < 0 || slot >= s.Gates.Length ? double.NaN : s.Gates[slot];
    }

    /// <summary>The expert with the highest gate for <paramref name="s"/> (−1 when none).</summary>
    public static int HighestGateExpert(SamplePrediction s)
    {
        int best = -1; double g = double.NegativeInfinity;
        for (int i = 0; i < s.Experts.Length && i < s.Gates.Length; i++)
            if (s.Gates[i] > g) { g = s.Gates[i]; best = s.Experts[i]; }
        return best;
    }
}
