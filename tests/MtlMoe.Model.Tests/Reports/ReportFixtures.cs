using MtlMoe.Engine;
using MtlMoe.Model.Data;
using MtlMoe.Model.Training;

namespace MtlMoe.Tests.Reports;

/// <summary>
/// A small generated data set (3 classes × 4 images, 64 px) with hand-made predictions and histories.
/// Images 1–4 are class 0, 5–8 class 1, 9–12 class 2. Predicted classes: class 0 → 0,0,0,1 (3/4 right);
/// class 1 → 1,2,2,0 (1/4); class 2 → 2,2,2,2 (4/4). Image i (0-based) goes to experts [i % 3, (i + 1) % 3] with
/// gates [0.7, 0.3], so each of the 3 experts receives 8 images, 4 of them as the top gate, mean gate 0.5.
/// </summary>
internal static class ReportFixtures
{
    public const int Crop = 64, Experts = 3;
    public static readonly int Resize = CubTransforms.ResizeFor(Crop);
    private static readonly int[] Predicted = [0, 0, 0, 1, 1, 2, 2, 0, 2, 2, 2, 2];

    private static readonly Lazy<(string Root, CubDataset Set)> Data = new(() =>
    {
        string root = Path.Combine(NewTempDir(), "CUB_200_2011");
        SyntheticBirds.WriteCub(root, new SyntheticBirdsOptions { Classes = 3, ImagesPerClass = 4, Width = 64, Height = 64, Seed = 5 });
        return (root, CubDataset.Load(root));
    });

    /// <summary>This process's scratch folder (removed by <see cref="ReportTestsCleanup"/>).</summary>
    public static readonly string Scratch = Path.Combine(Path.GetTempPath(), "mtlmoe-report-tests", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public static string NewTempDir()
    {
        string d = Path.Combine(Scratch, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>The evaluation, with <paramref name="pathOf"/> optionally overriding image paths by image id.</summary>
    public static EvalResult Eval(Func<int, string?, string?>? pathOf = null, bool withBoxes = true)
    {
        var set = Data.Value.Set;
        var transform = CubTransforms.Test(Crop, Resize);
        var samples = new List<SamplePrediction>();
        var all = set.Samples.OrderBy(s => s.ImageId).ToList();
        for (int i = 0; i < all.Count; i++)
        {
            var s = all[i];
            var img = ImageLoader.Default.Load(s.FullPath!);
            var b = transform.Apply(new BoxedImage(img, s.Box), new Rng(0)).Box.Normalized(Crop, Crop);
            float[] trueBox = [b.X0, b.Y0, b.X1, b.Y1];
            // A prediction shifted right by 15% of the crop and a bit smaller, so both boxes are visible.
            float[] predBox = [Math.Min(0.9f, b.X0 + 0.15f), b.Y0 + 0.05f, Math.Min(1f, b.X1 + 0.1f), b.Y1 - 0.05f];
            int p = Predicted[i];
            int[] top5 = [p, (p + 1) % 3, (p + 2) % 3];
            samples.Add(new SamplePrediction(s.ImageId, pathOf is null ? s.FullPath : pathOf(s.ImageId, s.FullPath), s.ClassIndex, top5,
                [0.6, 0.3, 0.1], trueBox, withBoxes ? predBox : null, [i % 3, (i + 1) % 3], [0.7, 0.3]));
        }
        return new EvalResult(1.234, 8 / 12.0, 1.0, withBoxes ? 0.5 : double.NaN, withBoxes ? 0.4 : double.NaN, [1.0, 1.0, 1.0],
            samples, set.ClassNames, Crop, Resize);
    }

    public static List<EpochMetrics> History(int epochs = 3, bool withBoxes = true)
    {
        var h = new List<EpochMetrics>();
        for (int e = 1; e <= epochs; e++)
        {
            double t = (double)e / epochs;
            h.Add(new EpochMetrics(e, 3.0 - 1.5 * t, 1.8 - t, withBoxes ? 0.9 - 0.3 * t : 0, 0.05,
                0.3 + 0.5 * t, 2.8 - 1.2 * t, 0.25 + 0.4 * t, 0.7 + 0.3 * t,
                withBoxes ? 0.3 + 0.3 * t : double.NaN, withBoxes ? 0.2 + 0.5 * t : double.NaN,
                [1.0 + 0.3 * t, 1.0 - 0.2 * t, 1.0 - 0.1 * t], 0.01 * (1 - 0.5 * t), 12.5, 40 + e));
        }
        return h;
    }

    public static AblationRow Row(string variant, double final, double best, double iou, int? toTarget, double seconds)
    {
        var h = new List<EpochMetrics>();
        for (int e = 1; e <= 4; e++)
            h.Add(new EpochMetrics(e, 2, 1.5, 0.3, 0.05, final * e / 4, 2, final * e / 4, 0.9, iou, iou, [1.0], 0.01, 5, 30));
        return new AblationRow(variant, final, best, iou, toTarget, 0.5, seconds, h);
    }
}

/// <summary>Deletes the scratch folder after the namespace's tests.</summary>
[SetUpFixture]
public sealed class ReportTestsCleanup
{
    [OneTimeTearDown]
    public void DeleteScratch()
    {
        try { if (Directory.Exists(ReportFixtures.Scratch)) Directory.Delete(ReportFixtures.Scratch, recursive: true); }
        catch (IOException) { /* best effort */ }
    }
}
