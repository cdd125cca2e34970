using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MtlMoe.Engine;
using MtlMoe.Engine.Autograd;
using Tensor = MtlMoe.Engine.Tensor;
using MtlMoe.Model.Backbone;
using MtlMoe.Model.Data;
using MtlMoe.Model.Net;
using static MtlMoe.Tests.Pretrained.TorchFiles;

namespace MtlMoe.Tests.Pretrained;

/// <summary>
/// The ImageNet backbone against ONNX Runtime running the package's own ResNet18.onnx and ResNetPreprocess.onnx on
/// three synthetic birds at 224 px: (a) fed exactly ONNX Runtime's preprocessed tensor, our backbone with the
/// unfolded weights gives the same 512-d features; (b) with our usual mean/std normalisation and the folded weights,
/// the features are nearly the same (the difference is the mean image's spatial variation and the border).
/// </summary>
public class ImageNetParityTests
{
    private const int Side = 224;

    private static readonly Lazy<RgbImage[]> Images = new(() =>
    {
        var o = new SyntheticBirdsOptions { Classes = 8, ImagesPerClass = 2, Width = Side, Height = Side, Seed = 21 };
        return [SyntheticBirds.Render(o, 0, 0).Image, SyntheticBirds.Render(o, 3, 1).Image, SyntheticBirds.Render(o, 6, 0).Image];
    });

    private static readonly Lazy<(float[][] Preprocessed, float[][] Features)> OnnxRuntime = new(() =>
    {
        using var options = new SessionOptions { IntraOpNumThreads = 2 };
        using var prep = new InferenceSession(ImageNetWeights.PreprocessOnnx(), options);
        using var resnet = new InferenceSession(ImageNetWeights.ResNetOnnx(), options);
        var pre = new List<float[]>();
        var feats = new List<float[]>();
        foreach (var img in Images.Value)
        {
            var rgb = new float[3 * Side * Side];                         // RGB planes, 0–255, as the package's input
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < Side * Side; i++) rgb[c * Side * Side + i] = img.Pixels[3 * i + c];
            using var p = prep.Run([NamedOnnxValue.CreateFromTensor(prep.InputMetadata.Keys.Single(), new DenseTensor<float>(rgb, [1, 3, Side, Side]))]);
            var q = p.Single().AsTensor<float>().ToArray();
            using var f = resnet.Run([NamedOnnxValue.CreateFromTensor(resnet.InputMetadata.Keys.Single(), new DenseTensor<float>(q, [1, 3, Side, Side]))]);
            pre.Add(q);
            feats.Add(f.Single().AsTensor<float>().ToArray());             // [1, 512, 1, 1]
        }
        return (pre.ToArray(), feats.ToArray());
    });

    private static ResNet Backbone(bool fold)
    {
        var net = new ResNet(ResNetDepth.ResNet18Cntk, rng: new Rng(3));
        var w = ImageNetWeights.Convert(ImageNetWeights.ResNetOnnx(), ImageNetWeights.PreprocessOnnx(), fold);
        try
        {
            var report = net.LoadStateDict(w, strict: true);
            Assert.That(report.Matched, Has.Count.EqualTo(w.Count));
        }
        finally { foreach (var t in w.Values) t.Dispose(); }
        return net.Eval() as ResNet ?? throw new InvalidOperationException();
    }

    private static float[] Features(ResNet net, float[] chw)
    {
        using var scope = DisposeScope.Begin();
        using var noGrad = GradMode.NoGrad();
        return net.Forward(Tensor.FromArray(chw, [1, 3, Side, Side])).ToFloatArray();
    }

    [Test]
    public void ExactPreprocessingGivesOnnxRuntimesFeatures()
    {
        using var net = Backbone(fold: false);
        var (pre, expected) = OnnxRuntime.Value;
        for (int i = 0; i < pre.Length; i++)
        {
            var ours = Features(net, pre[i]);
            double rel = RelativeError(ours, expected[i]);
            TestContext.Out.WriteLine($"image {i}: exact preprocessing, relative error {rel:E2}, cosine {Cosine(ours, expected[i]):F7}");
            Assert.That(rel, Is.LessThanOrEqualTo(1e-4), $"image {i}");
        }
    }

    [Test]
    public void FoldedPreprocessingIsCloseToOnnxRuntimesFeatures()
    {
        using var net = Backbone(fold: true);
        var (_, expected) = OnnxRuntime.Value;
        for (int i = 0; i < Images.Value.Length; i++)
        {
            var x = new float[3 * Side * Side];
            ImageNetNorm.ToChw(Images.Value[i], x);
            var ours = Features(net, x);
            double rel = RelativeError(ours, expected[i]), cos = Cosine(ours, expected[i]);
            TestContext.Out.WriteLine($"image {i}: folded preprocessing, relative error {rel:E2}, cosine {cos:F6}");
            Assert.That(cos, Is.GreaterThan(0.998), $"image {i}");
            Assert.That(rel, Is.LessThan(0.1), $"image {i}");
        }
    }

    [Test]
    public void TheModelApiConvertsOnceAndLoadsEveryTensor()
    {
        string cache = NewTempDir();
        var config = new ModelConfig { Variant = ModelVariant.MtlMoe, Backbone = ImageNetWeights.Backbone, Width = 1, Classes = 5, Resolution = 64, Hidden = 16 };
        var said = new List<string>();
        using (var net = new MtlMoeNet(config, seed: 2))
        {
            var report = Transfer.LoadImageNetBackbone(net, cache, said.Add);
            Assert.That((report.Missing, report.Unexpected, report.ShapeMismatched), Is.EqualTo((new List<string>(), new List<string>(), new List<string>())));
            Assert.That(report.Matched, Has.Count.EqualTo(net.Backbone.StateDict().Count));
            net.Eval();
            using var folded = Backbone(fold: true);
            var x = new float[3 * Side * Side];
            ImageNetNorm.ToChw(Images.Value[1], x);
            Assert.That(Features(net.Backbone, x), Is.EqualTo(Features(folded, x)));
        }
        Assert.That(said, Has.Count.EqualTo(1).And.Some.Contains("converting the ImageNet weights"));
        var file = Directory.GetFiles(Path.Combine(cache, "imagenet")).Single();
        var written = File.GetLastWriteTimeUtc(file);
        using (var again = new MtlMoeNet(config, seed: 3)) Transfer.LoadImageNetBackbone(again, cache, said.Add);
        Assert.That(said, Has.Count.EqualTo(1), "the second load uses the converted file");
        Assert.That(File.GetLastWriteTimeUtc(file), Is.EqualTo(written));
    }

    [Test]
    public void TheImageNetWeightsRefuseAnotherBackbone()
    {
        using var net = new MtlMoeNet(new ModelConfig { Variant = ModelVariant.Single, Backbone = BackboneKind.ResNet18, Width = 1, Classes = 3, Resolution = 32 });
        var e = Assert.Throws<ArgumentException>(() => Transfer.LoadImageNetBackbone(net, NewTempDir()));
        Assert.That(e!.Message, Does.Contain("fit backbone resnet18-cntk at width 1, not resnet18 ×1"));
    }
}
