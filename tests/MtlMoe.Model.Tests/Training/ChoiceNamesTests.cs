using System.Text.Json;
using MtlMoe.Model.IO;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;

namespace MtlMoe.Tests.Training;

/// <summary>The enums keep the spellings that options, config.json and checkpoint metadata always had.</summary>
public class ChoiceNamesTests
{
    [Test]
    public void EveryChoiceHasItsOldSpelling()
    {
        Assert.That(ChoiceNames.Names<ModelVariant>(), Is.EqualTo(new[] { "single", "moe", "mtl", "mtl-moe" }));
        Assert.That(ChoiceNames.Names<BackboneKind>(), Is.EqualTo(new[] { "resnet18", "resnet34", "resnet50", "resnet18-cntk" }));
        Assert.That(ChoiceNames.Names<ExpertDepth>(), Is.EqualTo(new[] { "head", "layer4" }));
        Assert.That(ChoiceNames.Names<FreezeThrough>(), Is.EqualTo(new[] { "none", "stem", "layer1", "layer2", "layer3", "layer4" }));
        Assert.That(ChoiceNames.Names<OptimizerKind>(), Is.EqualTo(new[] { "sgd", "adamw" }));
        Assert.That(ChoiceNames.Names<DeviceKind>(), Is.EqualTo(new[] { "auto", "cpu", "cuda" }));
    }

    [Test]
    public void ModelConfigJsonOfAnOldCheckpointStillReadsAndIsWrittenTheSameWay()
    {
        // The metadata a checkpoint written before the enums carries.
        const string old = """{"variant":"moe","backbone":"resnet34","width":0.5,"classes":7,"experts":3,"k":1,"expertDepth":"layer4","resolution":64,"hidden":32,"dropout":0.1,"zeroInitResidual":true,"learnedWeighting":false}""";
        var c = ModelConfig.FromJson(old);
        Assert.That((c.Variant, c.Backbone, c.ExpertDepth), Is.EqualTo((ModelVariant.Moe, BackboneKind.ResNet34, ExpertDepth.Layer4)));
        Assert.That(c.ToJson(), Is.EqualTo(old));
        Assert.That(() => ModelConfig.FromJson(old.Replace("\"moe\"", "\"huge\"")),
            Throws.ArgumentException.With.Message.Contains("expected one of single, moe, mtl, mtl-moe, got 'huge'"));
    }

    [TestCase("auto"), TestCase("cpu"), TestCase("cuda"), TestCase("cuda:1")]
    public void DeviceRequestsRoundTripTheirSpelling(string text)
    {
        Assert.That(DeviceRequest.TryParse(text, out var r), Is.True);
        Assert.That(r.ToString(), Is.EqualTo(text));
        Assert.That(JsonSerializer.Serialize(r), Is.EqualTo($"\"{text}\""));
        Assert.That(JsonSerializer.Deserialize<DeviceRequest>($"\"{text}\""), Is.EqualTo(r));
    }

    [TestCase("gpu"), TestCase("cpu:1"), TestCase("cuda:"), TestCase("cuda:-1"), TestCase("CUDA")]
    public void BadDeviceRequestsAreRefused(string text) => Assert.That(DeviceRequest.TryParse(text, out _), Is.False);

    [Test]
    public void TrainerOptionsWriteTheDeviceAndOptimizerAsBefore()
    {
        var json = JsonSerializer.Serialize(new TrainerOptions { Device = MtlMoe.Engine.Device.Cuda(1), Optimizer = OptimizerKind.AdamW }, RunFiles.Json);
        Assert.That(json, Does.Contain("\"device\": \"cuda:1\"").And.Contain("\"optimizer\": \"adamw\""));
        var back = JsonSerializer.Deserialize<TrainerOptions>(json, RunFiles.Json)!;
        Assert.That((back.Device, back.Optimizer), Is.EqualTo((MtlMoe.Engine.Device.Cuda(1), OptimizerKind.AdamW)));
    }
}
