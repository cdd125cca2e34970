using MtlMoe.Engine;
using MtlMoe.Engine.IO;
using MtlMoe.Engine.NN;

namespace MtlMoe.Model.Net;

/// <summary>Transfer learning: backbone weights by torchvision name, and experts started from a trained single head.</summary>
public static class Transfer
{
    /// <summary>
    /// Loads backbone weights from a safetensors file with torchvision names (<c>conv1.weight</c>,
    /// <c>layer1.0.bn1.running_mean</c>, …; a "backbone." prefix on every key is accepted too), non-strictly:
    /// a classifier ("fc.*") shows up as unexpected. With layer4 experts, the experts' copies follow the loaded layer4.
    /// </summary>
    public static LoadReport LoadPretrainedBackbone(MtlMoeNet net, string path)
    {
        var tensors = DisposeScope.Outside(() => Safetensors.Load(path));
        try
        {
            IReadOnlyDictionary<string, Tensor> byName = tensors;
            if (tensors.Count > 0 && tensors.Keys.All(k => k.StartsWith("backbone.", StringComparison.Ordinal)))
                byName = tensors.ToDictionary(kv => kv.Key["backbone.".Length..], kv => kv.Value);
            var report = net.Backbone.LoadStateDict(byName, strict: false);
            net.CopyBackboneLayer4IntoExperts();
            return report;
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>
    /// Copies the classifier head ("head.*") of a trained single-expert checkpoint (variant single or mtl) into every
    /// expert of <paramref name="net"/>; returns the report of the first expert's load (all are alike).
    /// </summary>
    public static LoadReport InitExpertsFrom(MtlMoeNet net, string checkpoint)
    {
        var tensors = DisposeScope.Outside(() => Safetensors.Load(checkpoint));
        try
        {
            var head = tensors.Where(kv => kv.Key.StartsWith("head.", StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key["head.".Length..], kv => kv.Value);
            if (head.Count == 0) throw new InvalidDataException($"init-experts-from: {checkpoint} has no single-expert head (no 'head.*' tensors; train with --variant single or mtl)");
            LoadReport? first = null;
            foreach (var e in net.ExpertModules)
            {
                var r = e.LoadStateDict(head, strict: false);
                first ??= r;
            }
            return first!;
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>The report as lines: counts, then every missing, unexpected and shape-mismatched key.</summary>
    public static IEnumerable<string> Describe(LoadReport r)
    {
        yield return $"matched {r.Matched.Count}, missing {r.Missing.Count}, unexpected {r.Unexpected.Count}, shape-mismatched {r.ShapeMismatched.Count}";
        foreach (var m in r.Missing) yield return $"  missing:    {m}";
        foreach (var u in r.Unexpected) yield return $"  unexpected: {u}";
        foreach (var s in r.ShapeMismatched) yield return $"  shape:      {s}";
    }
}
