using System.Text.Json.Nodes;
using MtlMoe.Model.Data;
using MtlMoe.Train.Cli;

namespace MtlMoe.Tests.Training;

/// <summary>Issue 18, items 7 and 10: predict reports per file and goes on; boxes in image pixels; --json; Ctrl-C.</summary>
public class PredictTests
{
    [TestCase(120, 80, 32, 36), TestCase(80, 120, 32, 36), TestCase(500, 375, 448, 512), TestCase(30, 30, 32, 36)]
    public void TheCropBoxMapsBackToTheOriginalImage(int w, int h, int crop, int resize)
    {
        // A box well inside the centre crop: the test transform carries it to the crop; the inverse must bring it back.
        var box = new BoxF(w * 0.4f, h * 0.35f, w * 0.6f, h * 0.55f);
        var t = CubTransforms.Test(crop, resize).Apply(new BoxedImage(new RgbImage(w, h, new byte[w * h * 3]), box), new MtlMoe.Engine.Rng(0));
        var back = CubTransforms.TestCropToOriginal(t.Box.Normalized(crop, crop), w, h, crop, resize);
        Assert.That(new[] { back.X0, back.Y0, back.X1, back.Y1 }, Is.EqualTo(new[] { box.X0, box.Y0, box.X1, box.Y1 }).Within(1e-3));
    }

    /// <summary>A folder with three good images (two of them share a name stem) and two bad files.</summary>
    private static (string Dir, string Ckpt) MixedFolder()
    {
        var (dir, image, ckpt, _) = PredictFixture.Make();
        string input = Path.Combine(dir, "in");
        Directory.CreateDirectory(Path.Combine(input, "sub"));
        File.Copy(image, Path.Combine(input, "x.png"));
        File.Copy(image, Path.Combine(input, "sub", "x.png"));
        using (var im = SixLabors.ImageSharp.Image.Load(image)) SixLabors.ImageSharp.ImageExtensions.SaveAsJpeg(im, Path.Combine(input, "x.jpg"));
        File.WriteAllText(Path.Combine(input, "notes.jpg"), "not an image");
        File.WriteAllBytes(Path.Combine(input, "empty.png"), []);
        return (input, ckpt);
    }

    [Test]
    public void AFolderWithBadFilesReportsEachGoesOnAndExitsOne()
    {
        var (input, ckpt) = MixedFolder();
        string annotate = Path.Combine(Path.GetDirectoryName(input)!, "annotated");
        var (code, output, err) = CliRunner.Run("predict", input, "--checkpoint", ckpt, "--annotate", annotate, "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        var errors = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(errors, Has.Length.EqualTo(3));
        Assert.That(errors[0], Does.StartWith($"error: {Path.Combine(input, "empty.png")}: not a recognised image format"));
        Assert.That(errors[1], Does.StartWith($"error: {Path.Combine(input, "notes.jpg")}: not a recognised image format"));
        Assert.That(errors[2].TrimEnd(), Is.EqualTo("error: 2 of 5 input(s) could not be predicted (listed above)"));
        Assert.That(output.Split('\n').Count(l => l.StartsWith("  route: ")), Is.EqualTo(3), "every good image printed");
        // x.jpg, x.png and sub/x.png: three pictures, none overwritten.
        var written = Directory.GetFiles(annotate, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(annotate, f)).Order(StringComparer.Ordinal);
        Assert.That(written, Is.EqualTo(new[] { Path.Combine("sub", "x.png"), "x-2.png", "x.png" }));
    }

    [Test]
    public void JsonPrintsOneObjectPerImage()
    {
        var (input, ckpt) = MixedFolder();
        var (code, output, _) = CliRunner.Run("predict", input, "--checkpoint", ckpt, "--json", "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        var objects = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.That(objects, Has.Count.EqualTo(5));
        Assert.That(objects.Count(o => o.ContainsKey("error")), Is.EqualTo(2));
        foreach (var o in objects.Where(o => !o.ContainsKey("error")))
        {
            Assert.That(o["top5"]!.AsArray(), Has.Count.EqualTo(5));
            Assert.That((double)o["top5"]![0]!["probability"]!, Is.GreaterThanOrEqualTo((double)o["top5"]![4]!["probability"]!));
            var box = o["box"]!;
            Assert.That((double)box["x"]! >= 0 && (double)box["x"]! + (double)box["w"]! <= (int)o["width"]! + 1e-3, box.ToJsonString());
            Assert.That(o["route"]!.AsArray(), Has.Count.EqualTo(2));
            Assert.That((string)o["path"]!, Does.StartWith(input));
        }
    }

    [Test]
    public void CtrlCStopsPredictBetweenImagesAndEvalBeforeItsFirstBatch()
    {
        var (input, ckpt) = MixedFolder();
        using var cts = new CancellationTokenSource();
        // Ctrl-C arrives while the first prediction is printed.
        var output = new CancelOnWrite(cts, "  route: ");
        var error = new StringWriter();
        int code = MtlMoe.Train.App.Run(["predict", input, "--checkpoint", ckpt, "--device", "cpu"], output, error, cts.Token);
        Assert.That(code, Is.EqualTo(130));
        // empty.png and notes.jpg fail first (files go in ordinal order), then sub/x.png is printed, then Ctrl-C.
        var lines = error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(3));
        Assert.That(lines[2].TrimEnd(), Is.EqualTo("interrupted after 1 of 5 images"));

        var data = MtlMoe.Tests.Data.TestSets.CopyOfMaster();
        var (ecode, _, eerr) = CliRunner.RunWith(new CancellationToken(true), "eval", "--checkpoint", ckpt, "--data", data, "--device", "cpu");
        Assert.That((ecode, CliRunner.FirstLine(eerr)), Is.EqualTo((130, "interrupted; nothing was written")));
    }

    private sealed class CancelOnWrite(CancellationTokenSource cts, string trigger) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value is not null && value.StartsWith(trigger, StringComparison.Ordinal)) cts.Cancel();
        }
    }
}
