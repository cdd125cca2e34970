using MtlMoe.Model.IO;
using MtlMoe.Engine;
using MtlMoe.Engine.IO;
using MtlMoe.Engine.IO.Torch;
using MtlMoe.Engine.NN;

namespace MtlMoe.Model.Net;

/// <summary>Transfer learning: backbone weights by torchvision name, and experts started from a trained single head.</summary>
public static class Transfer
{
    /// <summary>
    /// Loads backbone weights by torchvision name (<c>conv1.weight</c>, <c>layer1.0.bn1.running_mean</c>, …), non-strictly,
    /// from a safetensors file, a PyTorch <c>torch.save(state_dict)</c> file (.pth; see <see cref="TorchCheckpoint"/>) or
    /// one of this program's own checkpoints (its "backbone." part). A prefix common to the backbone's keys
    /// ("backbone.", DataParallel's "module.", a nested "state_dict.") is found and dropped; keys outside it are not
    /// reported. Throws <see cref="InvalidDataException"/> — before anything is copied — when fewer than half of the
    /// backbone's tensors match by name and shape: such a file is for another network. With layer4 experts, the
    /// experts' copies follow the loaded layer4.
    /// </summary>
    public static LoadReport LoadPretrainedBackbone(MtlMoeNet net, string path)
    {
        var tensors = DisposeScope.Outside(() => ReadWeights(path));
        try
        {
            var own = net.Backbone.StateDict();
            string prefix = BestPrefix(tensors.Keys, own);
            var byName = tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
            // The half rule counts weights and statistics: num_batches_tracked is a scalar of every width.
            var counted = own.Where(kv => !kv.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList();
            int fitting = counted.Count(kv => byName.TryGetValue(kv.Key, out var t) && Shapes.Equal(t.Shape, kv.Value.Shape));
            if (2 * fitting < counted.Count)
            {
                int sameName = counted.Count(kv => byName.ContainsKey(kv.Key));
                throw new InvalidDataException(
                    $"{path}: only {fitting} of the backbone's {counted.Count} weight and statistics tensors match by name and shape ({sameName} by name" +
                    $"{(prefix.Length > 0 ? $" under '{prefix}'" : "")}), so it holds no weights for backbone {net.Config.Backbone} ×{net.Config.Width}; " +
                    "pass a torchvision-named ResNet state dict of that depth and width (or a checkpoint of this program with the same --backbone and --width)");
            }
            var report = net.Backbone.LoadStateDict(byName, strict: false);
            net.CopyBackboneLayer4IntoExperts();
            return report;
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>
    /// Loads the ImageNet-trained weights (<see cref="ImageNetWeights"/>; converted once into
    /// <paramref name="cacheDir"/>/imagenet) into a <c>resnet18-cntk</c> backbone at width 1.
    /// </summary>
    public static LoadReport LoadImageNetBackbone(MtlMoeNet net, string cacheDir = ".cache", Action<string>? say = null)
    {
        if (net.Config.Backbone != ImageNetWeights.Backbone || net.Config.Width != 1.0)
            throw new ArgumentException($"the ImageNet weights fit backbone {ImageNetWeights.Backbone.ToChoiceName()} at width 1, not {net.Config.Backbone.ToChoiceName()} ×{net.Config.Width}");
        return LoadPretrainedBackbone(net, ImageNetWeights.EnsureConverted(cacheDir, say));
    }

    // safetensors, or a PyTorch file (a zip, or a legacy pickle starting with the PROTO opcode).
    private static Dictionary<string, Tensor> ReadWeights(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"pretrained weights '{path}' not found", path);
        var head = new byte[4];
        int n;
        using (var fs = File.OpenRead(path)) n = fs.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        bool torch = n == 4 && head.AsSpan().SequenceEqual("PK\u0003\u0004"u8) || n >= 1 && head[0] == 0x80;
        return torch ? TorchCheckpoint.Load(path) : Safetensors.Load(path);
    }

    // The prefix (possibly empty) under which the most backbone names appear in the file.
    private static string BestPrefix(IEnumerable<string> keys, IReadOnlyDictionary<string, Tensor> own)
    {
        var candidates = new HashSet<string>(StringComparer.Ordinal) { "" };
        foreach (var k in keys)
            foreach (var name in own.Keys)
                if (k.Length > name.Length && k.EndsWith(name, StringComparison.Ordinal) && k[k.Length - name.Length - 1] == '.')
                    candidates.Add(k[..^name.Length]);
        var keySet = keys.ToHashSet(StringComparer.Ordinal);
        return candidates.OrderByDescending(p => own.Keys.Count(name => keySet.Contains(p + name))).ThenBy(p => p.Length).First();
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
