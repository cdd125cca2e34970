using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MtlMoe.Engine;
using MtlMoe.Engine.Autograd;
using MtlMoe.Model.Data;
using MtlMoe.Model.IO;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;
using MtlMoe.Train.Reports;

namespace MtlMoe.Train.Commands;

/// <summary>One class of a prediction.</summary>
/// <param name="Name">Class name (classes.txt's, as stored in the checkpoint).</param>
/// <param name="Index">0-based class index.</param>
/// <param name="Probability">Softmax probability.</param>
public sealed record ClassScore(string Name, int Index, double Probability);

/// <summary>One image's prediction as <c>predict</c> prints it.</summary>
/// <param name="Path">The image file.</param>
/// <param name="Width">Its width in pixels.</param>
/// <param name="Height">Its height in pixels.</param>
/// <param name="Top5">The most probable classes, most probable first.</param>
/// <param name="Box">Predicted box in pixels of the original image (as bounding_boxes.txt has it), or null without a box head.</param>
/// <param name="Experts">Experts the image was routed to.</param>
/// <param name="Gates">Their gates.</param>
public sealed record Prediction(string Path, int Width, int Height, IReadOnlyList<ClassScore> Top5, BoxF? Box, int[] Experts, double[] Gates);

/// <summary>
/// <c>predict IMAGE|DIR… --checkpoint FILE [--json] [--annotate DIR]</c>: top-5 classes, the box in image pixels and
/// the expert route per image. A file that cannot be read is reported and skipped; the exit code is 1 when any
/// failed. Ctrl-C stops between images (exit 130).
/// </summary>
public static class PredictCommand
{
    private static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp"];

    /// <summary>Runs the command; returns the exit code.</summary>
    public static int Run(TrainSettings settings, TextWriter output, TextWriter error, CancellationToken cancel = default)
    {
        var (files, failed) = Inputs(settings, error);
        using var predictor = new Predictor(settings);
        var names = new AnnotationNames();
        int done = 0, total = files.Count + failed;
        foreach (var (file, relative) in files)
        {
            if (cancel.IsCancellationRequested)
            {
                error.WriteLine($"interrupted after {done} of {files.Count} images");
                return 130;
            }
            RgbImage image;
            Prediction p;
            try { (p, image) = predictor.Predict(file); }
            catch (FileProblemException e)
            {
                failed++;
                error.WriteLine($"error: {e.Message}");
                if (settings.Json) output.WriteLine(new JsonObject { ["path"] = file, ["error"] = e.Message }.ToJsonString());
                continue;
            }
            done++;
            if (settings.Json) output.WriteLine(ToJson(p).ToJsonString());
            else Print(p, output);
            if (settings.Annotate is not null)
            {
                var top = p.Top5[0];
                PredictionPicture.Save(Path.Combine(settings.Annotate, names.For(relative)), image, p.Box,
                    FormattableString.Invariant($"{SkiaImages.ClassLabel(top.Name)} {top.Probability * 100:F1}%"));
            }
        }
        if (settings.Annotate is not null && done > 0 && !settings.Json) output.WriteLine($"annotated images written to {Path.GetFullPath(settings.Annotate)}");
        if (failed == 0) return 0;
        error.WriteLine($"error: {failed} of {total} input(s) could not be predicted (listed above)");
        return ErrorReport.FailureExit;
    }

    /// <summary>Predicts every image given (files, or folders searched recursively), skipping none; for tests and scripts.</summary>
    public static List<Prediction> Predict(TrainSettings s)
    {
        var (files, _) = Inputs(s, TextWriter.Null);
        using var predictor = new Predictor(s);
        return files.Select(f => predictor.Predict(f.Path).Prediction).ToList();
    }

    private static void Print(Prediction p, TextWriter output)
    {
        output.WriteLine(p.Path);
        for (int i = 0; i < p.Top5.Count; i++) output.WriteLine(FormattableString.Invariant($"  {i + 1}. {p.Top5[i].Name,-40} {p.Top5[i].Probability,7:P1}"));
        if (p.Box is BoxF b)
            output.WriteLine(FormattableString.Invariant($"  box (x y w h in pixels of the {p.Width}x{p.Height} image): {b.X0:F1} {b.Y0:F1} {b.Width:F1} {b.Height:F1}"));
        output.WriteLine("  route: " + string.Join(", ", p.Experts.Select((e, i) => FormattableString.Invariant($"expert {e} (gate {p.Gates[i]:F3})"))));
    }

    /// <summary>The --json object of one image.</summary>
    public static JsonObject ToJson(Prediction p)
    {
        var top = new JsonArray();
        foreach (var c in p.Top5) top.Add(new JsonObject { ["class"] = c.Name, ["index"] = c.Index, ["probability"] = c.Probability });
        var route = new JsonArray();
        for (int i = 0; i < p.Experts.Length; i++) route.Add(new JsonObject { ["expert"] = p.Experts[i], ["gate"] = p.Gates[i] });
        return new JsonObject
        {
            ["path"] = p.Path, ["width"] = p.Width, ["height"] = p.Height, ["top5"] = top,
            ["box"] = p.Box is BoxF b ? new JsonObject { ["x"] = b.X0, ["y"] = b.Y0, ["w"] = b.Width, ["h"] = b.Height } : null,
            ["route"] = route,
        };
    }

    /// <summary>The image files to predict with their path relative to the folder given (the file name for a file); inputs that do not exist count as failed.</summary>
    private static (List<(string Path, string Relative)> Files, int Failed) Inputs(TrainSettings s, TextWriter error)
    {
        var files = new List<(string, string)>();
        int failed = 0;
        foreach (var input in s.Inputs)
        {
            if (Directory.Exists(input))
            {
                var found = Directory.EnumerateFiles(input, "*", SearchOption.AllDirectories)
                    .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal)
                    .Select(f => (f, Path.GetRelativePath(input, f))).ToList();
                if (found.Count == 0) { failed++; error.WriteLine($"error: {input}: no images ({string.Join(", ", Extensions)}) in this folder"); }
                files.AddRange(found);
            }
            else if (File.Exists(input)) files.Add((input, Path.GetFileName(input)));
            else { failed++; error.WriteLine($"error: {input}: no such file or folder"); }
        }
        return (files, failed);
    }

    /// <summary>The model of --checkpoint on its device, and the test-time transform.</summary>
    private sealed class Predictor : IDisposable
    {
        private readonly MtlMoeNet _net;
        private readonly string[] _classes;
        private readonly Device _device;
        private readonly ImageLoader _loader;
        private readonly int _res, _resize;

        public Predictor(TrainSettings s)
        {
            RunSetup.ApplyThreads(s);
            (_device, _) = RunSetup.ResolveDevice(s.Device);
            RunSetup.ApplyMath(s, _device);
            (_net, _classes, _) = RunFiles.LoadModel(s.Checkpoint!, _device);
            _net.Eval();
            _res = _net.Config.Resolution;
            _resize = CubTransforms.ResizeFor(_res);
            _loader = new ImageLoader(RunSetup.DecodeLimitsOf(s));
        }

        public (Prediction Prediction, RgbImage Image) Predict(string file)
        {
            var img = _loader.Load(file);
            var crop = CubTransforms.Test(_res, _resize).Apply(new BoxedImage(img, new BoxF(0, 0, img.Width, img.Height)), new Rng(0));
            var chw = new float[3 * _res * _res];
            ImageNetNorm.ToChw(crop.Image, chw);
            using var noGrad = GradMode.NoGrad();
            using var scope = DisposeScope.Begin();
            var x = Tensor.FromArray(chw, [1, 3, _res, _res]).To(_device);  // [1, 3, R, R]
            var o = _net.Run(x);
            var (top, probs) = Evaluator.TopFive(o.Logits.ToFloatArray());
            var box = o.Boxes?.ToFloatArray();                                 // [4] normalised to the crop
            BoxF? original = box is null ? null : CubTransforms.TestCropToOriginal(new BoxF(box[0], box[1], box[2], box[3]), img.Width, img.Height, _res, _resize);
            var scores = top.Select((c, i) => new ClassScore(c < _classes.Length ? _classes[c] : c.ToString(CultureInfo.InvariantCulture), c, probs[i])).ToList();
            return (new Prediction(file, img.Width, img.Height, scores, original, o.ExpertIndices[..o.K], o.Gates[..o.K]), img);
        }

        public void Dispose() => _net.Dispose();
    }

    /// <summary>
    /// Output names under --annotate: the input's relative path with .png, so x.jpg and sub/x.jpg do not meet; when two
    /// inputs still map to one name (x.jpg and x.png), later ones get -2, -3, … — nothing written by this run is overwritten.
    /// </summary>
    private sealed class AnnotationNames
    {
        private readonly HashSet<string> _used = new(StringComparer.OrdinalIgnoreCase);

        public string For(string relative)
        {
            string stem = Path.ChangeExtension(relative, null);
            string name = stem + ".png";
            for (int n = 2; !_used.Add(name); n++) name = $"{stem}-{n}.png";
            return name;
        }
    }
}
