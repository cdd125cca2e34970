using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Tests.Data;
using MtlMoe.Tests.Training;
using MtlMoe.Train;
using MtlMoe.Train.Cli;
using static MtlMoe.Tests.Pretrained.TorchFiles;

namespace MtlMoe.Tests.Pretrained;

/// <summary>--pretrained through the program's entry point: exit codes and the first line printed.</summary>
[NonParallelizable] // swaps Console.Out/Error to capture the training progress it asserts on
public class PretrainedCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        // Training progress goes to the console, so it is captured too.
        var o = new StringWriter();
        var e = new StringWriter();
        var (stdout, stderr) = (Console.Out, Console.Error);
        Console.SetOut(o);
        Console.SetError(e);
        try { return (App.Run(args, o, e), o.ToString(), e.ToString()); }
        finally { Console.SetOut(stdout); Console.SetError(stderr); }
    }

    private static string FirstLine(string text) => text.Split('\n')[0].TrimEnd('\r');

    /// <summary>One batch of one epoch on the small generated CUB folder.</summary>
    private static string[] TinyRun(string outDir, params string[] extra) =>
        ["--data", TestSets.MasterRoot, "--res", "32", "--resize", "36", "--epochs", "1", "--batch", "4", "--max-batches", "1",
         "--workers", "1", "--device", "cpu", "--plain", "--out", outDir, .. extra];

    [Test]
    public void ImageNetPicksItsBackboneAndFullWidth()
    {
        var s = CommandLine.Parse(["--pretrained", "imagenet"]);
        Assert.That((s.Backbone, s.Width), Is.EqualTo((ImageNetWeights.Backbone, 1.0)));
        var cub = CommandLine.Parse(["--preset", "cub448", "--pretrained", "imagenet"]);
        Assert.That((cub.Backbone, cub.Width, cub.Res), Is.EqualTo((ImageNetWeights.Backbone, 1.0, 448)), "the preset's resnet50 gives way; its recipe stays");
        Assert.That(CommandLine.Parse(["--pretrained", "imagenet", "--backbone", "resnet18-cntk", "--width", "1"]).Backbone, Is.EqualTo(BackboneKind.ResNet18Cntk));
    }

    [Test]
    public void TheDefaultRunStartsFromImageNetWithItsRecipe()
    {
        var d = CommandLine.Parse([]);
        Assert.That((d.Pretrained, d.Backbone, d.Width, d.Lr, d.Epochs, d.Res, d.Resize), Is.EqualTo(("imagenet", BackboneKind.ResNet18Cntk, 1.0, 0.01, 10, 160, 176)));
        var ablate = CommandLine.Parse(["ablate", "--epochs", "6", "--res", "128"]);
        Assert.That((ablate.Pretrained, ablate.Epochs, ablate.Res, ablate.Resize, ablate.Lr), Is.EqualTo(("imagenet", 6, 128, 0, 0.01)), "given options win; the resize follows --res");
        // Naming a network, or --pretrained none, keeps the from-scratch defaults.
        var scratch = CommandLine.Parse(["--pretrained", "none"]);
        Assert.That((scratch.Pretrained, scratch.Backbone, scratch.Width, scratch.Lr, scratch.Epochs, scratch.Res), Is.EqualTo(((string?)null, BackboneKind.ResNet18, 0.25, 0.1, 70, 128)));
        Assert.That(CommandLine.Parse(["--width", "0.5"]).Pretrained, Is.Null);
        Assert.That(CommandLine.Parse(["--backbone", "resnet34"]).Pretrained, Is.Null);
        var cub = CommandLine.Parse(["--preset", "cub448"]);
        Assert.That((cub.Pretrained, cub.Backbone), Is.EqualTo(((string?)null, BackboneKind.ResNet50)));
        var cubImageNet = CommandLine.Parse(["--preset", "cub448", "--pretrained", "imagenet"]);
        Assert.That((cubImageNet.Res, cubImageNet.Epochs), Is.EqualTo((448, 50)), "a preset's recipe stays");
        Assert.That(CommandLine.Parse(["predict", "x.png", "--checkpoint", "c.safetensors"]).Pretrained, Is.Null, "only train and ablate load weights");
    }

    [TestCase(new[] { "--pretrained", "imagenet", "--backbone", "resnet50" }, "error: --pretrained imagenet needs --backbone resnet18-cntk (the ImageNet weights' architecture), got 'resnet50'")]
    [TestCase(new[] { "--width", "0.5", "--pretrained", "imagenet" }, "error: --pretrained imagenet needs --width 1 (the ImageNet weights are full width), got 0.5")]
    [TestCase(new[] { "--freeze", "layer5" }, "error: --freeze must be one of none, stem, layer1, layer2, layer3, layer4, got 'layer5'")]
    [TestCase(new[] { "--backbone", "resnet19" }, "error: --backbone must be one of resnet18, resnet34, resnet50, resnet18-cntk, got 'resnet19'")]
    public void ConflictingOptionsExitTwo(string[] args, string expected)
    {
        var (code, _, err) = Run(args);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(FirstLine(err), Is.EqualTo(expected));
    }

    /// <summary>A checkpoint of this program: an mtl-moe net at width 1/8 (backbone, experts, box head).</summary>
    private static string OwnCheckpoint(string dir)
    {
        string ckpt = Path.Combine(dir, "best.safetensors");
        using var net = new MtlMoeNet(TrainingFixtures.TinyConfig("mtl-moe", classes: 3), seed: 4);
        RunFiles.SaveModel(ckpt, net, ["a", "b", "c"], 2);
        return ckpt;
    }

    [Test]
    public void OurOwnCheckpointsGiveTheirBackbone()
    {
        string dir = NewTempDir();
        string ckpt = OwnCheckpoint(dir);
        var (code, output, err) = Run(TinyRun(Path.Combine(dir, "run"), "--width", "0.125", "--pretrained", ckpt));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output + err, Does.Contain($"pretrained backbone {ckpt}:"));
        Assert.That(output + err, Does.Match(@"matched \d+, missing 0, unexpected 0, shape-mismatched 0"));
    }

    [Test]
    public void ACheckpointForAnotherWidthIsRefusedWithExitOne()
    {
        string dir = NewTempDir();
        string ckpt = OwnCheckpoint(dir);                                // width 1/8; the run below is at the default 1/4
        string run = Path.Combine(dir, "run");
        var (code, _, err) = Run(TinyRun(run, "--pretrained", ckpt));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(FirstLine(err), Does.StartWith($"error: {ckpt}: only 0 of the backbone's 100 weight and statistics tensors match by name and shape (100 by name under 'backbone.')"));
        Assert.That(Directory.Exists(run) && Directory.EnumerateFileSystemEntries(run).Any(), Is.False, "nothing was trained or written");
    }

    [Test]
    public void AFileOfAnotherNetworkIsRefusedWithExitOne()
    {
        // The ONNX-free case of "matches nothing": a torch state dict with unrelated names.
        string path = Fixture("tensors.pth");
        var (code, _, err) = Run(TinyRun(Path.Combine(NewTempDir(), "run"), "--pretrained", path));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(FirstLine(err), Does.StartWith($"error: {path}: only 0 of the backbone's 100 weight and statistics tensors match by name and shape (0 by name)"));
    }

    [Test]
    public void AMaliciousPthIsRefusedWithExitOne()
    {
        string dir = NewTempDir();
        byte[] pickle = [0x80, 2, .. Global("os", "system"), .. Str("echo hi"), 0x85, (byte)'R', (byte)'.'];
        string path = Zip(dir, "evil.pth", pickle);
        var (code, _, err) = Run(TinyRun(Path.Combine(dir, "run"), "--pretrained", path));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(FirstLine(err), Does.StartWith($"error: torch checkpoint '{path}' (archive/data.pkl): refused the global 'os.system'"));
    }

    [Test]
    public void Cub448WithATorchvisionResNet50StateDictTrains()
    {
        // The reduced-size ResNet-50 fixture has torchvision's names; --width matches its channels.
        string dir = NewTempDir();
        string pth = Fixture("resnet50_narrow.pth");
        var (code, output, err) = Run(["--preset", "cub448", "--pretrained", pth, "--width", "0.0625",
            .. TinyRun(Path.Combine(dir, "run"), "--variant", "single")]);
        Assert.That(code, Is.EqualTo(0), err);
        // All 318 backbone tensors of torchvision's 320 (fc.weight and fc.bias are reported as unexpected).
        Assert.That(output + err, Does.Contain("matched 318, missing 0, unexpected 2, shape-mismatched 0"));
        Assert.That(output + err, Does.Contain("resnet50 ×0.0625"));
    }
}
