using MtlMoe.Engine;
using MtlMoe.Model.Data;
using MtlMoe.Model.Training;
using MtlMoe.Train.Reports;

namespace MtlMoe.Tests.Reports;

/// <summary>
/// Writes a realistic-looking demo run folder and ablation (for looking at the pictures by eye) into
/// $MTLMOE_REPORT_DEMO or artifacts/report-demo under the repository. Explicit: never part of a normal test run.
/// </summary>
[Explicit("writes demo pictures for inspection")]
public class ReportDemo
{
    [Test]
    public void WriteDemo()
    {
        string outDir = Environment.GetEnvironmentVariable("MTLMOE_REPORT_DEMO") ?? Path.Combine(RepoRoot(), "artifacts", "report-demo");
        if (Directory.Exists(outDir)) Directory.Delete(outDir, true);
        var opts = new SyntheticBirdsOptions { Classes = 8, ImagesPerClass = 12, Width = 256, Height = 256, Seed = 3 };
        string root = Path.Combine(outDir, "data", "CUB_200_2011");
        SyntheticBirds.WriteCub(root, opts);
        var set = CubDataset.Load(root);
        const int crop = 224, experts = 4;
        int resize = CubTransforms.ResizeFor(crop);
        var transform = CubTransforms.Test(crop, resize);
        var rng = new Rng(7);
        var samples = new List<SamplePrediction>();
        foreach (var s in set.Test)
        {
            var img = ImageLoader.Default.Load(s.FullPath!);
            var b = transform.Apply(new BoxedImage(img, s.Box), new Rng(0)).Box.Normalized(crop, crop);
            float J() => (float)(rng.NextDouble() - 0.5) * 0.16f;
            float[] tb = [b.X0, b.Y0, b.X1, b.Y1];
            float[] pb = [Math.Clamp(b.X0 + J(), 0, 1), Math.Clamp(b.Y0 + J(), 0, 1), Math.Clamp(b.X1 + J(), 0, 1), Math.Clamp(b.Y1 + J(), 0, 1)];
            int pred = rng.NextDouble() < 0.72 ? s.ClassIndex : (s.ClassIndex + 1 + (int)(rng.NextDouble() * 2)) % set.NumClasses;
            int e0 = s.ClassIndex % experts, e1 = (e0 + 1 + (int)(rng.NextDouble() * 3)) % experts;
            double g = 0.55 + 0.4 * rng.NextDouble();
            samples.Add(new SamplePrediction(s.ImageId, s.FullPath, s.ClassIndex, [pred, (pred + 1) % 8, (pred + 2) % 8, (pred + 3) % 8, (pred + 4) % 8],
                [0.6, 0.2, 0.1, 0.05, 0.05], tb, pb, [e0, e1], [g, 1 - g]));
        }
        int n = samples.Count;
        double top1 = samples.Count(p => p.PredictedClass == p.TrueClass) / (double)n;
        double miou = samples.Average(p => p.IoU);
        var eval = new EvalResult(0.9, top1, 0.97, miou, samples.Count(p => p.IoU >= 0.5) / (double)n, [1.1, 0.9, 1.05, 0.95], samples, set.ClassNames, crop, resize);
        var history = Curve(12, top1, miou, 0.01);
        string run = Path.Combine(outDir, "run");
        var reporter = new RunReporter();
        for (int e = 1; e <= history.Count; e++) reporter.EpochFinished(run, history.Take(e).ToList());
        reporter.RunFinished(run, "{\n  \"variant\": \"mtl-moe\",\n  \"epochs\": 12\n}", history, eval, experts);
        reporter.AblationFinished(Path.Combine(outDir, "ablation"),
        [
            new AblationRow("single", 0.55, 0.57, double.NaN, 9, 0.5, 300, Curve(12, 0.55, double.NaN, 0.01)),
            new AblationRow("moe", 0.60, 0.61, double.NaN, 7, 0.5, 340, Curve(12, 0.60, double.NaN, 0.01)),
            new AblationRow("mtl", 0.66, 0.67, 0.58, 6, 0.5, 330, Curve(12, 0.66, 0.58, 0.01)),
            new AblationRow("mtl-moe", top1, top1 + 0.01, miou, 5, 0.5, 380, history),
        ]);
        TestContext.Out.WriteLine($"demo written to {outDir}");
    }

    private static List<EpochMetrics> Curve(int epochs, double top1, double iou, double lr)
    {
        var h = new List<EpochMetrics>();
        for (int e = 1; e <= epochs; e++)
        {
            double t = 1 - Math.Exp(-3.0 * e / epochs), c = 0.5 * (1 + Math.Cos(Math.PI * e / epochs));
            double a = top1 * t / (1 - Math.Exp(-3.0));
            h.Add(new EpochMetrics(e, 3.6 - 2.4 * t, 2.6 - 1.9 * t, double.IsNaN(iou) ? 0 : 0.9 - 0.5 * t, 0.04 - 0.02 * t, Math.Min(1, a * 1.15),
                3.4 - 2.1 * t, a, Math.Min(1, a + 0.25), double.IsNaN(iou) ? double.NaN : iou * t / (1 - Math.Exp(-3.0)),
                double.IsNaN(iou) ? double.NaN : Math.Min(1, iou * 1.1 * t), [1 + 0.4 * (1 - t), 1 - 0.3 * (1 - t), 1 + 0.1 * Math.Sin(e), 1 - 0.2 * (1 - t)],
                lr * c + 1e-5, 25 + e % 3, 38.5));
        }
        return h;
    }

    private static string RepoRoot()
    {
        var d = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "MtlMoe.Engine.sln"))) d = d.Parent;
        return d?.FullName ?? Path.GetTempPath();
    }
}
