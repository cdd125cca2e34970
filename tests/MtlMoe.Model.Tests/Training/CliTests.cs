using MtlMoe.Model.Data;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Train;
using MtlMoe.Train.Cli;
using MtlMoe.Train.Commands;

namespace MtlMoe.Tests.Training;

/// <summary>tools/Train: option errors and predict on a generated image.</summary>
public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = App.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [TestCase(new[] { "--epochs", "zero" }, "error: --epochs expects an integer, got 'zero'")]
    [TestCase(new[] { "--bogus", "1" }, "error: unknown option --bogus")]
    [TestCase(new[] { "--variant", "huge" }, "error: --variant must be one of single, moe, mtl, mtl-moe, got 'huge'")]
    [TestCase(new[] { "--experts", "2", "--k", "3" }, "error: --k must be between 1 and --experts (2), got 3")]
    [TestCase(new[] { "fly" }, "error: unknown command 'fly' (expected train, eval, predict, ablate)")]
    [TestCase(new[] { "predict", "x.jpg" }, "error: predict needs IMAGE|DIR arguments and --checkpoint FILE")]
    [TestCase(new[] { "--lr" }, "error: option --lr needs a value")]
    [TestCase(new[] { "--jitter", "1.5" }, "error: --jitter must be in [0, 1), got 1.5")]
    [TestCase(new[] { "--zero-init-residual", "maybe" }, "error: --zero-init-residual expects on or off, got 'maybe'")]
    public void OptionErrorsPrintOneLineAndUsageAndExitTwo(string[] args, string expected)
    {
        var (code, output, err) = Run(args);
        Assert.That(code, Is.EqualTo(2));
        var lines = err.Split('\n');
        Assert.That(lines[0].TrimEnd('\r'), Is.EqualTo(expected));
        Assert.That(lines[1], Does.Contain("usage:"));
        Assert.That(output, Is.Empty);
    }

    [Test]
    public void Tf32IsOptInAndTheCubPresetTurnsItOn()
    {
        Assert.That(CommandLine.Parse([]).Tf32, Is.False, "full FP32 by default");
        Assert.That(CommandLine.Parse(["--tf32"]).Tf32, Is.True);
        var cub = CommandLine.Parse(["--preset", "cub448"]);
        Assert.That((cub.Backbone, cub.Res, cub.Resize, cub.Batch, cub.Tf32), Is.EqualTo((BackboneKind.ResNet50, 448, 512, 16, true)));
    }

    [Test]
    public void AmpIsOffByDefaultAndReachesTheTrainer()
    {
        Assert.That(CommandLine.Parse([]).Amp, Is.EqualTo(AmpMode.Off));
        var s = CommandLine.Parse(["--amp", "bf16"]);
        Assert.That(RunSetup.TrainerOptionsOf(s, MtlMoe.Engine.Device.Cpu).Amp, Is.EqualTo(AmpMode.Bf16));
        var (code, _, err) = Run(["--amp", "fp16"]);
        Assert.That((code, err.Split('\n')[0].TrimEnd('\r')), Is.EqualTo((2, "error: --amp must be one of off, bf16, got 'fp16'")));
        Assert.That(OptionTable.CommandHelp(CommandKind.Train), Does.Contain("--amp off|bf16").And.Contain("on the CPU the bf16 ops are reference implementations"));
    }

    [Test]
    public void RecipeOptionsReachTheModelAndTrainerConfigs()
    {
        var s = CommandLine.Parse(["--jitter", "0.25", "--hidden", "64", "--dropout", "0.1", "--zero-init-residual", "off"]);
        var model = RunSetup.ModelConfigOf(s, 7);
        var trainer = RunSetup.TrainerOptionsOf(s, MtlMoe.Engine.Device.Cpu);
        Assert.That((model.Hidden, model.Dropout, model.ZeroInitResidual, trainer.ColorJitter), Is.EqualTo((64, 0.1, false, 0.25)));
        // The synthetic default trains without colour jitter; the CUB preset keeps the standard 0.4.
        Assert.That(RunSetup.TrainerOptionsOf(CommandLine.Parse([]), MtlMoe.Engine.Device.Cpu).ColorJitter, Is.EqualTo(0));
        Assert.That(RunSetup.TrainerOptionsOf(CommandLine.Parse(["--preset", "cub448"]), MtlMoe.Engine.Device.Cpu).ColorJitter, Is.EqualTo(0.4));
    }

    [Test]
    public void ResumeOfAFolderWithoutARunFailsWithOneLine()
    {
        var (code, _, err) = Run("--resume", TrainingFixtures.NewTempDir(), "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.StartWith("error: ").And.Contain("config.json: not found"));
    }

    [Test]
    public void PredictPrintsTopFiveBoxAndRouteAndWritesAnAnnotatedPng()
    {
        var (dir, image, ckpt, names) = PredictFixture.Make();
        string annotate = Path.Combine(dir, "annotated");

        var (code, output, err) = Run("predict", image, "--checkpoint", ckpt, "--annotate", annotate, "--device", "cpu");
        var (w, h) = ImageLoader.Default.ReadSize(image);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("bird.png").And.Contain("  5. ").And.Contain($"box (x y w h in pixels of the {w}x{h} image)").And.Contain("route: expert "));
        Assert.That(names.Count(n => output.Contains(n)), Is.EqualTo(5), "five class names printed");
        Assert.That(File.Exists(Path.Combine(annotate, "bird.png")));
        using (var png = SixLabors.ImageSharp.Image.Load(Path.Combine(annotate, "bird.png")))
            Assert.That((png.Width, png.Height), Is.EqualTo((w, h)), "drawn on the original image, not the crop");

        var settings = CommandLine.Parse(["predict", dir, "--checkpoint", ckpt, "--device", "cpu"]);
        var p = PredictCommand.Predict(settings).Single(x => x.Path == image);
        Assert.That(p.Top5, Has.Count.EqualTo(5));
        Assert.That(p.Top5.Select(t => t.Probability), Is.Ordered.Descending);
        Assert.That(p.Top5.Sum(t => t.Probability), Is.LessThanOrEqualTo(1.0 + 1e-9));
        Assert.That(p.Box, Is.Not.Null);
        var b = p.Box!.Value;
        Assert.That(b.X0 >= 0 && b.Y0 >= 0 && b.X1 <= w && b.Y1 <= h && b.Area > 0, $"box {b} inside the {w}x{h} image");
        Assert.That(p.Experts, Has.Length.EqualTo(2));
        Assert.That(p.Gates.Sum(), Is.EqualTo(1.0).Within(1e-5));
    }
}

/// <summary>A generated bird image and a tiny untrained checkpoint for the predict tests.</summary>
internal static class PredictFixture
{
    public static (string Dir, string Image, string Checkpoint, IReadOnlyList<string> Names) Make()
    {
        string dir = TrainingFixtures.NewTempDir();
        var synth = new SyntheticBirdsOptions { Classes = 6, ImagesPerClass = 1, Width = 48, Height = 40, Seed = 3 };
        var bird = SyntheticBirds.Render(synth, 2, 0);
        string image = Path.Combine(dir, "bird.png");
        BoxDrawing.SaveGrid(image, [new BoxedImage(bird.Image, new BoxF(0, 0, 0, 0))], 1);
        string ckpt = Path.Combine(dir, "model.safetensors");
        var names = SyntheticBirds.ClassNames(synth);
        using (var net = new MtlMoeNet(TrainingFixtures.TinyConfig("mtl-moe", classes: 6), seed: 4))
            RunFiles.SaveModel(ckpt, net, names, 1);
        return (dir, image, ckpt, names);
    }
}

/// <summary>Issue 18, item 9: help on stdout with exit 0, per command; options checked per command; @FILE.</summary>
public class CliHelpTests
{
    [TestCase("--help"), TestCase("-h"), TestCase("help")]
    public void HelpGoesToStdoutWithExitZero(string arg)
    {
        var (code, output, err) = CliRunner.Run(arg);
        Assert.That((code, err), Is.EqualTo((0, "")));
        Assert.That(output, Does.StartWith("usage: ").And.Contain("commands:").And.Contain("  predict ").And.Contain("--epochs N"));
    }

    [TestCase(new[] { "train", "--help" }, "--resume RUN_DIR", "--json")]
    [TestCase(new[] { "predict", "-h" }, "--json", "--lr")]
    [TestCase(new[] { "help", "eval" }, "--checkpoint FILE", "--epochs")]
    [TestCase(new[] { "ablate", "--epochs", "3", "--help" }, "--epochs N", "--variant")]
    public void EachCommandHasItsOwnHelp(string[] args, string has, string hasNot)
    {
        var (code, output, err) = CliRunner.Run(args);
        Assert.That((code, err), Is.EqualTo((0, "")));
        Assert.That(output, Does.StartWith("usage: ").And.Contain(has).And.Contain("exit codes:"));
        Assert.That(output, Does.Not.Contain(hasNot + " "));
    }

    [Test]
    public void HelpForAnUnknownCommandIsAnOptionError()
    {
        var (code, _, err) = CliRunner.Run("help", "fly");
        Assert.That((code, CliRunner.FirstLine(err)), Is.EqualTo((2, "error: unknown command 'fly' (expected train, eval, predict, ablate)")));
    }

    [Test]
    public void AnOptionOfAnotherCommandIsRefused()
    {
        var (code, _, err) = CliRunner.Run("predict", "x.jpg", "--checkpoint", "c.safetensors", "--epochs", "3");
        Assert.That((code, CliRunner.FirstLine(err)), Is.EqualTo((2, "error: --epochs does not apply to predict ('predict --help' lists its options)")));
    }

    [Test]
    public void ResponseFilesAddTheirWords()
    {
        string file = Path.Combine(TrainingFixtures.NewTempDir(), "args.txt");
        File.WriteAllText(file, "# a recipe\n--epochs 3\n--batch 8   --optimizer adamw\n");
        var s = CommandLine.Parse(["@" + file, "--lr", "0.01"]);
        Assert.That((s.Epochs, s.Batch, s.Optimizer, s.Lr), Is.EqualTo((3, 8, OptimizerKind.AdamW, 0.01)));
        var (code, _, err) = CliRunner.Run("@/nonexistent/args.txt");
        Assert.That((code, CliRunner.FirstLine(err)), Is.EqualTo((2, "error: response file '/nonexistent/args.txt' does not exist")));
    }

    [Test]
    public void EveryOptionInTheTableIsHandled()
    {
        // The sample value each placeholder stands for; a flag has none.
        string Sample(OptionSpec o) => o.Value switch
        {
            null => "",
            "DIR" or "RUN_DIR" or "FILE" or "CHECKPOINT" => Path.GetTempPath(),
            "X" => "0.5",
            "on|off" => "on",
            "cub448" => "cub448",
            "auto|cpu|cuda|cuda:N" => "cpu",
            var v when v.Contains('|') => v.Split('|')[0],
            "PX" => "64",
            _ => "2",
        };
        foreach (var o in OptionTable.All.Where(o => o.Name != "help"))
        {
            var command = Enum.GetValues<CommandKind>().First(c => OptionTable.Applies(o, c));
            var args = new List<string> { command.ToString().ToLowerInvariant() };
            if (command == CommandKind.Predict) args.AddRange(["x.jpg", "--checkpoint", "c"]);
            if (command == CommandKind.Eval && o.Name is not ("checkpoint" or "resume")) args.AddRange(["--checkpoint", "c"]);
            args.Add("--" + o.Name);
            if (!o.IsFlag) args.Add(Sample(o));
            Assert.That(() => CommandLine.Parse(args), Throws.Nothing, string.Join(" ", args));
            Assert.That(CommandLine.Parse(args).Given, Does.Contain(o.Name));
        }
    }
}
