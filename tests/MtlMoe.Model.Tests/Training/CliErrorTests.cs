using System.Text;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Tests.Data;

namespace MtlMoe.Tests.Training;

/// <summary>
/// Issue 18, item 1: every kind of bad input ends as one line <c>error: &lt;file&gt;[:&lt;line&gt;]: &lt;what&gt;</c> and exit
/// code 1 (data, files) or 2 (options), never a stack trace. Each case runs the program's entry point in-process;
/// together they write the case → exit code → first line table (cli-errors.md in the test folder).
/// </summary>
public class CliErrorTests
{
    private static readonly List<(string Case, int Code, string Line)> Table = new();

    /// <summary>A case: a name, a setup that breaks something and returns the arguments, the code and the expected first line.</summary>
    public sealed record Case(string Name, Func<Ctx, string[]> Setup, int Code, Func<Ctx, string> Expected)
    {
        public override string ToString() => Name;
    }

    /// <summary>Paths a case works with.</summary>
    public sealed class Ctx
    {
        public string Root { get; } = TestSets.CopyOfMaster();
        public string Dir { get; } = TrainingFixtures.NewTempDir();
        public string Img(int id) => Path.GetFullPath(TestSets.ImagePath(Root, id));
        public string Meta(string file) => Path.Combine(Root, file);
        public string[] Train(params string[] extra) => ["--data", Root, "--out", Path.Combine(Dir, "run"), .. CliRunner.Tiny, .. extra];
        /// <summary>A finished one-epoch run of the tiny settings.</summary>
        public string Run()
        {
            string run = Path.Combine(Dir, "run");
            var (code, _, err) = CliRunner.Run(Train());
            Assert.That(code, Is.EqualTo(0), err);
            return run;
        }
        public string Checkpoint(byte[] bytes) { var p = Path.Combine(Dir, "model.safetensors"); File.WriteAllBytes(p, bytes); return p; }
        public string GoodCheckpoint()
        {
            var p = Path.Combine(Dir, "good.safetensors");
            using var net = new MtlMoeNet(TrainingFixtures.TinyConfig("mtl-moe", classes: 3), seed: 4);
            RunFiles.SaveModel(p, net, ["a", "b", "c"], 1);
            return p;
        }
    }

    private static string Hint => " (--skip-bad leaves such images out)";

    public static IEnumerable<Case> Cases()
    {
        // CUB metadata
        yield return new("images.txt with a header line", c => { Prepend(c.Meta("images.txt"), "image_id path"); return c.Train(); }, 1,
            c => $"error: {c.Meta("images.txt")}:1: 'image_id' is not an integer id (ids start at 1)");
        yield return new("non-numeric image id", c => { TestSets.ReplaceLine(c.Root, "images.txt", 2, "two " + Rel(c, 2)); return c.Train(); }, 1,
            c => $"error: {c.Meta("images.txt")}:2: 'two' is not an integer id (ids start at 1)");
        yield return new("duplicate image id", c => { File.AppendAllText(c.Meta("image_class_labels.txt"), "4 2\n"); return c.Train(); }, 1,
            c => $"error: {c.Meta("image_class_labels.txt")}:13: duplicate image id 4 (first on line 4){Hint}");
        yield return new("class id out of range", c => { TestSets.ReplaceLine(c.Root, "image_class_labels.txt", 2, "2 7"); return c.Train(); }, 1,
            c => $"error: {c.Meta("image_class_labels.txt")}:2: class id 7 out of range 1..3 (classes.txt){Hint}");
        yield return new("split flag 2", c => { TestSets.ReplaceLine(c.Root, "train_test_split.txt", 2, "2 2"); return c.Train(); }, 1,
            c => $"error: {c.Meta("train_test_split.txt")}:2: split flag '2' must be 1 (train) or 0 (test){Hint}");
        yield return new("too few fields", c => { TestSets.ReplaceLine(c.Root, "bounding_boxes.txt", 3, "3 1 2 30"); return c.Train(); }, 1,
            c => $"error: {c.Meta("bounding_boxes.txt")}:3: expected 5 fields (<image_id> <x> <y> <width> <height>), got 4{Hint}");
        yield return new("missing bounding-box line", c => { DropLine(c.Meta("bounding_boxes.txt"), "6 "); return c.Train(); }, 1,
            c => $"error: {c.Meta("bounding_boxes.txt")}: image id 6 (images.txt line 6) has no line{Hint}");
        yield return new("box outside the image", c => { TestSets.ReplaceLine(c.Root, "bounding_boxes.txt", 3, "3 10 10 200 20"); return c.Train(); }, 1,
            c => $"error: {c.Meta("bounding_boxes.txt")}:3: box of image 3 (10, 10, 210, 30) lies outside the 64x64 image by more than 2 px{Hint}");
        yield return new("box with no area", c => { TestSets.ReplaceLine(c.Root, "bounding_boxes.txt", 3, "3 10 10 0 20"); return c.Train(); }, 1,
            c => $"error: {c.Meta("bounding_boxes.txt")}:3: box of image 3 has no area (w=0, h=20){Hint}");
        yield return new("NaN in a box", c => { TestSets.ReplaceLine(c.Root, "bounding_boxes.txt", 4, "4 NaN 1 30 30"); return c.Train(); }, 1,
            c => $"error: {c.Meta("bounding_boxes.txt")}:4: 'NaN' is not a number{Hint}");
        yield return new("missing metadata file", c => { File.Delete(c.Meta("classes.txt")); return c.Train(); }, 1,
            c => $"error: {c.Meta("classes.txt")}: required file is missing");
        // Images
        yield return new("missing image file", c => { File.Delete(c.Img(5)); return c.Train(); }, 1,
            c => $"error: {c.Meta("images.txt")}:5: image file 'images/{Rel(c, 5)}' does not exist{Hint}");
        yield return new("empty image file", c => { File.WriteAllBytes(c.Img(5), []); return c.Train(); }, 1,
            c => $"error: {c.Img(5)}: not a recognised image format (0 bytes){Hint}");
        yield return new("text file named .jpg", c => { File.WriteAllText(c.Img(8), "not an image\n"); return c.Train(); }, 1,
            c => $"error: {c.Img(8)}: not a recognised image format (13 bytes){Hint}");
        yield return new("decompression-bomb header", c => { File.WriteAllBytes(c.Img(9), CraftedImages.PngHeader(100_000, 100_000)); return c.Train(); }, 1,
            c => $"error: {c.Img(9)}: image header claims 100000x100000 = 10000000000 pixels, over the limit of 40000000; --max-image-pixels raises it{Hint}");
        yield return new("--max-image-pixels below the images", c => c.Train("--max-image-pixels", "4000"), 1,
            c => $"error: {c.Img(1)}: image header claims 64x64 = 4096 pixels, over the limit of 4000; --max-image-pixels raises it{Hint}");
        yield return new("3 KB JPEG claiming 6000x6000", c => { File.WriteAllBytes(c.Img(2), CraftedImages.JpegClaiming(File.ReadAllBytes(c.Img(2)), 6000, 6000)); return c.Train(); }, 1,
            c => $"error: {c.Img(2)}: the file has {new FileInfo(c.Img(2)).Length} bytes, fewer than the 70312 any complete JPEG of 6000x6000 pixels needs: truncated or crafted (not decoded){Hint}");
        yield return new("truncated JPEG (decoded before training)", c => { var b = File.ReadAllBytes(c.Img(7)); File.WriteAllBytes(c.Img(7), b[..(b.Length / 2)]); return c.Train(); }, 1,
            c => $"error: {c.Img(7)}: truncated or corrupt image (JPEG has no end-of-image marker; ");
        yield return new("images.txt path leaving images/", c => { TestSets.ReplaceLine(c.Root, "images.txt", 3, "3 ../../../../etc/hostname"); return c.Train(); }, 1,
            c => $"error: {c.Meta("images.txt")}:3: path '../../../../etc/hostname' leaves the images/ folder (paths are relative to images/ and stay inside it){Hint}");
        // Checkpoints
        yield return new("eval: truncated checkpoint", c => ["eval", "--checkpoint", Truncated(c), "--data", c.Root, "--device", "cpu"], 1,
            c => $"error: {Path.Combine(c.Dir, "model.safetensors")}: not a valid safetensors file: ");
        yield return new("eval: header length 2^60", c => ["eval", "--checkpoint", c.Checkpoint([0, 0, 0, 0, 0, 0, 0, 0x10, 1, 2, 3]), "--data", c.Root, "--device", "cpu"], 1,
            c => $"error: {Path.Combine(c.Dir, "model.safetensors")}: not a valid safetensors file: header length 1152921504606846976 exceeds the 100000000-byte limit");
        yield return new("eval: random bytes", c => ["eval", "--checkpoint", c.Checkpoint(RandomBytes(4096)), "--data", c.Root, "--device", "cpu"], 1,
            c => $"error: {Path.Combine(c.Dir, "model.safetensors")}: not a valid safetensors file: header length ");
        yield return new("eval: missing checkpoint", c => ["eval", "--checkpoint", Path.Combine(c.Dir, "nope.safetensors"), "--data", c.Root, "--device", "cpu"], 1,
            c => $"error: {Path.Combine(c.Dir, "nope.safetensors")}: file not found");
        yield return new("--pretrained: truncated file", c => c.Train("--pretrained", Truncated(c)), 1,
            c => $"error: {Path.Combine(c.Dir, "model.safetensors")}: not a valid safetensors file: ");
        yield return new("--resume: truncated trainer_state.json", c =>
        {
            var state = Path.Combine(c.Run(), "ckpt-0001", "trainer_state.json");
            File.WriteAllText(state, File.ReadAllText(state)[..40]);
            return ["--resume", Path.Combine(c.Dir, "run"), "--epochs", "2"];
        }, 1, c => $"error: {Path.Combine(c.Dir, "run", "ckpt-0001", "trainer_state.json")}:");
        yield return new("--resume: truncated model", c =>
        {
            var model = Path.Combine(c.Run(), "ckpt-0001", "model.safetensors");
            File.WriteAllBytes(model, File.ReadAllBytes(model)[..5000]);
            return ["--resume", Path.Combine(c.Dir, "run"), "--epochs", "2"];
        }, 1, c => $"error: {Path.Combine(c.Dir, "run", "ckpt-0001", "model.safetensors")}: not a valid safetensors file: ");
        yield return new("--resume with --lr", c => ["--resume", c.Run(), "--lr", "0.5"], 2,
            c => $"error: --resume continues {Path.Combine(c.Dir, "run")} with the settings in its config.json; --lr cannot change");
        yield return new("--out of a finished run", c => { c.Run(); return c.Train(); }, 2,
            c => $"error: {Path.Combine(c.Dir, "run")} already holds a run; continue it with --resume");
        yield return new("predict: a text file", c =>
        {
            var f = Path.Combine(c.Dir, "notes.jpg");
            File.WriteAllText(f, "hello");
            return ["predict", f, "--checkpoint", c.GoodCheckpoint(), "--device", "cpu"];
        }, 1, c => $"error: {Path.Combine(c.Dir, "notes.jpg")}: not a recognised image format (5 bytes)");
        // Folders
        yield return new("--out under a regular file", c =>
        {
            var file = Path.Combine(c.Dir, "plain-file");
            File.WriteAllText(file, "x");
            return ["--data", c.Root, "--out", Path.Combine(file, "run"), .. CliRunner.Tiny];
        }, 1, c => $"error: {Path.Combine(c.Dir, "plain-file", "run")}: ");
        // Options
        yield return new("--epochs x", _ => ["--epochs", "x"], 2, _ => "error: --epochs expects an integer, got 'x'");
        yield return new("unknown option", _ => ["--epoch", "3"], 2, _ => "error: unknown option --epoch");
        yield return new("--device gpu", _ => ["--device", "gpu"], 2, _ => "error: --device must be auto, cpu, cuda or cuda:N, got 'gpu'");
        yield return new("--data folder missing", c => ["--data", Path.Combine(c.Dir, "none")], 2, c => $"error: --data folder '{Path.Combine(c.Dir, "none")}' does not exist");
    }

    [TestCaseSource(nameof(Cases))]
    public void PrintsOneLineAndTheExitCode(Case k)
    {
        var c = new Ctx();
        var args = k.Setup(c);
        var (code, _, err) = CliRunner.Run(args);
        string first = CliRunner.FirstLine(err);
        lock (Table) Table.Add((k.Name, code, first));
        Assert.That(err, Does.Not.Contain("   at ").And.Not.Contain("Unhandled exception"), "no stack trace");
        Assert.That(first, Does.StartWith(k.Expected(c)));
        Assert.That(code, Is.EqualTo(k.Code), err);
        int lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        int expected = k.Code == 2 ? 2 : k.Name.StartsWith("predict") ? 2 : 1;
        Assert.That(lines, Is.EqualTo(expected), "one line (options: plus the usage line; predict: plus its summary)");
    }

    [Test]
    public void DebugAddsTheStackTrace()
    {
        var c = new Ctx();
        var (code, _, err) = CliRunner.Run(["eval", "--checkpoint", c.Checkpoint(RandomBytes(64)), "--data", c.Root, "--device", "cpu", "--debug"]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(CliRunner.FirstLine(err), Does.StartWith("error: "));
        Assert.That(err, Does.Contain("   at "), "--debug prints the trace");
    }

    [Test]
    public void UnexpectedExceptionsAreInternalErrorsWithAHint()
    {
        var (code, line) = MtlMoe.Train.Cli.ErrorReport.Describe(new NullReferenceException("boom"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(line, Does.StartWith("internal error (NullReferenceException: boom); rerun with --debug"));
        var (code2, line2) = MtlMoe.Train.Cli.ErrorReport.Describe(MtlMoe.Model.IO.FileErrors.Translate("/r/x", new UnauthorizedAccessException("Access to the path '/r/x' is denied."))!);
        Assert.That((code2, line2), Is.EqualTo((1, "/r/x: permission denied")));
    }

    [OneTimeTearDown]
    public void WriteTable()
    {
        var sb = new StringBuilder("| case | exit code | first line printed |\n|---|---|---|\n");
        foreach (var (name, code, line) in Table.OrderBy(t => t.Case, StringComparer.Ordinal))
            sb.Append($"| {name} | {code} | `{line.Replace(Path.GetTempPath(), "$TMP/").Replace("|", "\\|")}` |\n");
        File.WriteAllText(Path.Combine(TestContext.CurrentContext.WorkDirectory, "cli-errors.md"), sb.ToString());
    }

    private static string Rel(Ctx c, int id) => File.ReadAllLines(c.Meta("images.txt"))[id - 1].Split(' ', 2)[1];

    private static void Prepend(string path, string line) => File.WriteAllLines(path, [line, .. File.ReadAllLines(path)]);

    private static void DropLine(string path, string prefix)
        => File.WriteAllLines(path, File.ReadAllLines(path).Where(l => !l.StartsWith(prefix, StringComparison.Ordinal)));

    private static string Truncated(Ctx c)
    {
        var bytes = File.ReadAllBytes(c.GoodCheckpoint());
        return c.Checkpoint(bytes[..(bytes.Length * 2 / 3)]);
    }

    private static byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        new Random(7).NextBytes(b);
        return b;
    }
}
