using System.Globalization;
using MtlMoe.Engine;
using MtlMoe.Engine.Autograd;
using MtlMoe.Model.Data;
using MtlMoe.Model.Net;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;

namespace MtlMoe.Train.Commands;

/// <summary>One image's prediction as <c>predict</c> prints it.</summary>
/// <param name="Path">The image file.</param>
/// <param name="Top5">(class name, probability), most probable first.</param>
/// <param name="Box">Predicted box normalised to the centre crop (x0, y0, x1, y1), or null without a box head.</param>
/// <param name="Experts">Experts the image was routed to.</param>
/// <param name="Gates">Their gates.</param>
public sealed record Prediction(string Path, IReadOnlyList<(string Name, double Probability)> Top5, float[]? Box, int[] Experts, double[] Gates);

/// <summary><c>predict IMAGE|DIR… --checkpoint FILE [--annotate DIR]</c>: top-5 classes, box and route per image.</summary>
public static class PredictCommand
{
    private static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp"];

    /// <summary>Runs the command; returns the exit code.</summary>
    public static int Run(TrainSettings settings, TextWriter output)
    {
        foreach (var p in Predict(settings, output))
        {
            output.WriteLine(p.Path);
            for (int i = 0; i < p.Top5.Count; i++) output.WriteLine(FormattableString.Invariant($"  {i + 1}. {p.Top5[i].Name,-40} {p.Top5[i].Probability,7:P1}"));
            if (p.Box is not null) output.WriteLine(FormattableString.Invariant($"  box (x0, y0, x1, y1 of the centre crop, 0..1): {p.Box[0]:F3} {p.Box[1]:F3} {p.Box[2]:F3} {p.Box[3]:F3}"));
            output.WriteLine("  route: " + string.Join(", ", p.Experts.Select((e, i) => FormattableString.Invariant($"expert {e} (gate {p.Gates[i]:F3})"))));
        }
        return 0;
    }

    /// <summary>Predicts every image given (files, or folders searched recursively); writes annotated PNGs when --annotate is set.</summary>
    public static List<Prediction> Predict(TrainSettings s, TextWriter output)
    {
        RunSetup.ApplyThreads(s);
        var (device, _) = RunSetup.ResolveDevice(s.Device);
        RunSetup.ApplyMath(s, device);
        var files = new List<string>();
        foreach (var input in s.Inputs)
        {
            if (Directory.Exists(input))
                files.AddRange(Directory.EnumerateFiles(input, "*", SearchOption.AllDirectories)
                    .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order(StringComparer.Ordinal));
            else if (File.Exists(input)) files.Add(input);
            else throw new FileNotFoundException($"predict: '{input}' is neither an image nor a folder");
        }
        var (net, classes, _) = RunFiles.LoadModel(s.Checkpoint!, device);
        using var _n = net;
        net.Eval();
        int res = net.Config.Resolution;
        var transform = CubTransforms.Test(res, CubTransforms.ResizeFor(res));
        var results = new List<Prediction>();
        using var noGrad = GradMode.NoGrad();
        foreach (var file in files)
        {
            var img = ImageLoader.Default.Load(file);
            var crop = transform.Apply(new BoxedImage(img, new BoxF(0, 0, img.Width, img.Height)), new Rng(0));
            var chw = new float[3 * res * res];
            ImageNetNorm.ToChw(crop.Image, chw);
            using var scope = DisposeScope.Begin();
            var x = Tensor.FromArray(chw, [1, 3, res, res]).To(device);  // [1, 3, R, R]
            var o = net.Run(x);
            var (top, probs) = Evaluator.TopFive(o.Logits.ToFloatArray());
            var box = o.Boxes?.ToFloatArray();
            var p = new Prediction(file, top.Select((c, i) => (c < classes.Length ? classes[c] : c.ToString(CultureInfo.InvariantCulture), probs[i])).ToList(),
                box, o.ExpertIndices[..o.K], o.Gates[..o.K]);
            results.Add(p);
            if (s.Annotate is not null)
            {
                var px = box is null ? new BoxF(0, 0, 0, 0) : new BoxF(box[0] * res, box[1] * res, box[2] * res, box[3] * res);
                var name = Path.GetFileNameWithoutExtension(file) + ".png";
                BoxDrawing.SaveGrid(Path.Combine(s.Annotate, name), [new BoxedImage(crop.Image, px)], 1);
            }
        }
        if (s.Annotate is not null) output.WriteLine($"annotated images written to {Path.GetFullPath(s.Annotate)}");
        return results;
    }
}
