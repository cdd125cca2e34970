using MtlMoe.Model.IO;
using System.Reflection;
using MtlMoe.Engine;
using MtlMoe.Engine.IO;
using MtlMoe.Engine.IO.Onnx;
using MtlMoe.Model.Backbone;
using MtlMoe.Model.Data;

namespace MtlMoe.Model.Net;

/// <summary>
/// ImageNet-trained weights for the <c>resnet18-cntk</c> backbone, from the NuGet package
/// Microsoft.ML.DnnImageFeaturizer.ResNet18 0.24.0 (MIT; restored with the project by a PackageDownload of
/// model/MtlMoe.Model.csproj, so nothing is fetched at run time): CNTK 2.6's ImageNet ResNet exported to ONNX
/// (ResNet18.onnx) and its preprocessing (ResNetPreprocess.onnx: RGB 0–255 → BGR minus a 3×224×224 mean image).
/// <para>
/// Folding: our loader feeds x = (p/255 − mean)/std per RGB channel; CNTK's network expects q = p_BGR − M(h, w).
/// With M replaced by its per-channel mean m, q[c'] = 255·std[c]·x[c] + (255·mean[c] − m[c']) where c is c' in RGB
/// order, so conv1's weights become W[o, c', …]·255·std[c] reordered to RGB, and the constant's response
/// Σ W[o, c', kh, kw]·(255·mean[c] − m[c']) moves into bn1.running_mean (conv1 has no bias). What this leaves out
/// is the mean image's spatial variation and the image border (where the constant meets zero padding).
/// </para>
/// </summary>
public static class ImageNetWeights
{
    /// <summary>The backbone these weights fit (always at width 1).</summary>
    public const BackboneKind Backbone = BackboneKind.ResNet18Cntk;
    /// <summary>The NuGet package that ships the ONNX files.</summary>
    public const string Package = "Microsoft.ML.DnnImageFeaturizer.ResNet18";
    /// <summary>Its version.</summary>
    public const string PackageVersion = "0.24.0";
    /// <summary>Name of the converted file in the cache folder (the suffix changes whenever the conversion does).</summary>
    public const string CacheFileName = "resnet18-cntk-imagenet-folded-v1.safetensors";

    private const string MetadataKey = "MtlMoe.ImageNetModels";

    /// <summary>
    /// The package's tools/DnnImageModels folder: where restore put it when this assembly was built, else under
    /// $NUGET_PACKAGES or ~/.nuget/packages. Throws <see cref="FileNotFoundException"/> naming the expected path.
    /// </summary>
    public static string ModelFolder()
    {
        var candidates = new List<string>();
        var built = typeof(ImageNetWeights).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == MetadataKey)?.Value;
        if (!string.IsNullOrEmpty(built)) candidates.Add(built);
        string relative = Path.Combine(Package.ToLowerInvariant(), PackageVersion, "tools", "DnnImageModels");
        var env = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (!string.IsNullOrEmpty(env)) candidates.Add(Path.Combine(env, relative));
        candidates.Add(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages", relative));
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, "ResNet18Onnx", "ResNet18.onnx"))) return c;
        throw new FileNotFoundException(
            $"the ImageNet weights were not found at {Path.Combine(candidates[0], "ResNet18Onnx", "ResNet18.onnx")}: they come with NuGet package {Package} {PackageVersion}, " +
            "which restoring the project downloads (run `dotnet restore` in the repository)");
    }

    /// <summary>ResNet18.onnx in <see cref="ModelFolder"/>.</summary>
    public static string ResNetOnnx(string? folder = null) => Path.Combine(folder ?? ModelFolder(), "ResNet18Onnx", "ResNet18.onnx");

    /// <summary>ResNetPreprocess.onnx in <see cref="ModelFolder"/>.</summary>
    public static string PreprocessOnnx(string? folder = null) => Path.Combine(folder ?? ModelFolder(), "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>
    /// The converted backbone in <paramref name="cacheDir"/>/imagenet (made once, written atomically; a damaged
    /// file is made again). <paramref name="say"/> hears about a conversion.
    /// </summary>
    public static string EnsureConverted(string cacheDir, Action<string>? say = null)
    {
        string path = Path.Combine(cacheDir, "imagenet", CacheFileName);
        if (File.Exists(path))
        {
            try { foreach (var t in DisposeScope.Outside(() => Safetensors.Load(path)).Values) t.Dispose(); return path; }
            catch (SafetensorsFormatException e) { say?.Invoke($"the converted ImageNet weights are damaged ({e.Message}); converting again"); }
        }
        string folder = ModelFolder();
        say?.Invoke($"converting the ImageNet weights {ResNetOnnx(folder)} into {Path.GetFullPath(path)} (once) …");
        var weights = Convert(ResNetOnnx(folder), PreprocessOnnx(folder), fold: true);
        try
        {
            Safetensors.Save(path, weights, new Dictionary<string, string>
            {
                ["source"] = $"{Package} {PackageVersion}: ResNet18Onnx/ResNet18.onnx",
                ["backbone"] = Backbone.ToChoiceName(),
                ["preprocessing"] = "folded for RGB inputs normalised by ImageNet mean/std",
            });
        }
        finally { foreach (var t in weights.Values) t.Dispose(); }
        return path;
    }

    /// <summary>
    /// torchvision-named weights of the CNTK ResNet. With <paramref name="fold"/>, for inputs normalised by
    /// <see cref="ImageNetNorm"/> (see the class summary); without, for the preprocessed BGR, mean-image-subtracted
    /// input the ONNX model takes. The caller disposes the tensors.
    /// </summary>
    public static Dictionary<string, Tensor> Convert(string resnetOnnx, string preprocessOnnx, bool fold)
    {
        var imported = OnnxResNetImport.Import(OnnxReader.Load(resnetOnnx));
        var w = imported.Weights;
        try
        {
            var expectedBlocks = ResNet.StageBlocks(ResNetDepth.ResNet18Cntk);
            if (!imported.StageBlocks.SequenceEqual(expectedBlocks) || !imported.StageWidths.SequenceEqual([64, 128, 256, 512]))
                throw new OnnxFormatException($"onnx file '{resnetOnnx}': a ResNet with blocks [{string.Join(", ", imported.StageBlocks)}] and widths [{string.Join(", ", imported.StageWidths)}], " +
                                              $"not the [{string.Join(", ", expectedBlocks)}] × 64–512 of {Backbone.ToChoiceName()}");
            if (fold) Fold(w, ChannelMeans(preprocessOnnx));
            return w;
        }
        catch { foreach (var t in w.Values) t.Dispose(); throw; }
    }

    /// <summary>The mean image [3, H, W] (BGR) of the preprocessing model, after checking it is RGB → BGR then a subtraction.</summary>
    public static OnnxTensor MeanImage(string preprocessOnnx)
    {
        var g = OnnxReader.Load(preprocessOnnx).Graph;
        OnnxFormatException Bad(string what) => new($"onnx file '{preprocessOnnx}': {what}; expected Split(RGB) → Concat(B, G, R) → Sub(mean image)");
        if (g.Nodes.Count != 3 || g.Nodes[0].OpType != "Split" || g.Nodes[1].OpType != "Concat" || g.Nodes[2].OpType != "Sub")
            throw Bad($"nodes {string.Join(", ", g.Nodes.Select(n => n.OpType))}");
        var split = g.Nodes[0].Outputs;
        if (split.Length != 3 || !g.Nodes[1].Inputs.SequenceEqual([split[2], split[1], split[0]])) throw Bad("the channels are not reversed");
        var sub = g.Nodes[2];
        if (sub.Inputs[0] != g.Nodes[1].Outputs[0] || !g.Initializers.TryGetValue(sub.Inputs[1], out var mean)) throw Bad("no mean image");
        if (mean.Dims.Length != 4 || mean.Dims[0] != 1 || mean.Dims[1] != 3) throw Bad($"a mean image of shape [{string.Join(", ", mean.Dims)}]");
        return mean;
    }

    // Per-channel (B, G, R) averages of the mean image.
    private static double[] ChannelMeans(string preprocessOnnx)
    {
        var m = MeanImage(preprocessOnnx);
        var f = m.Floats;
        int plane = f.Length / 3;
        var means = new double[3];
        for (int c = 0; c < 3; c++)
        {
            double s = 0;
            for (int i = 0; i < plane; i++) s += f[c * plane + i];
            means[c] = s / plane;
        }
        return means;
    }

    private static void Fold(Dictionary<string, Tensor> w, double[] bgrMeans)
    {
        var conv = w["conv1.weight"];                     // [64, 3, 7, 7], input channels B, G, R
        var wt = conv.ToFloatArray();
        int outC = conv.Shape[0], k = conv.Shape[2] * conv.Shape[3];
        var folded = new float[wt.Length];
        var constant = new double[outC];                   // conv1's response to the constant part of the input
        for (int o = 0; o < outC; o++)
            for (int cb = 0; cb < 3; cb++)
            {
                int rgb = 2 - cb;
                double scale = 255.0 * ImageNetNorm.Std[rgb], shift = 255.0 * ImageNetNorm.Mean[rgb] - bgrMeans[cb];
                for (int i = 0; i < k; i++)
                {
                    double v = wt[(o * 3 + cb) * k + i];
                    folded[(o * 3 + rgb) * k + i] = (float)(v * scale);
                    constant[o] += v * shift;
                }
            }
        var mean = w["bn1.running_mean"].ToFloatArray();
        var newMean = new float[outC];
        for (int o = 0; o < outC; o++) newMean[o] = (float)(mean[o] - constant[o]);
        Replace(w, "conv1.weight", Tensor.FromArray(folded, conv.Shape));
        Replace(w, "bn1.running_mean", Tensor.FromArray(newMean, [outC]));
    }

    private static void Replace(Dictionary<string, Tensor> w, string name, Tensor t)
    {
        w[name].Dispose();
        w[name] = DisposeScope.Outside(() => t);
    }
}
