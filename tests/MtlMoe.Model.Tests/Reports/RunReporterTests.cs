using MtlMoe.Train.Reports;

namespace MtlMoe.Tests.Reports;

public class RunReporterTests
{
    [Test]
    public void EpochFinished_WritesEveryCurve_AsDecodablePngs()
    {
        string dir = ReportFixtures.NewTempDir();
        new RunReporter().EpochFinished(dir, ReportFixtures.History());
        foreach (var f in new[] { RunPlots.Loss, RunPlots.Accuracy, RunPlots.IoU, RunPlots.ExpertLoad, RunPlots.LearningRate })
        {
            using var img = PngAssert.Decode(Path.Combine(dir, f));
            Assert.That((img.Width, img.Height), Is.EqualTo((900, 540)), f);
            Assert.That(PngAssert.DistinctColours(img), Is.GreaterThan(5), $"{f} looks blank");
        }
        Assert.That(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories), Is.Empty, "temp files left behind");
    }

    [Test]
    public void EpochFinished_WithoutBoxHead_SkipsIoUPlot_AndHandlesOneEpoch()
    {
        string dir = ReportFixtures.NewTempDir();
        new RunReporter().EpochFinished(dir, ReportFixtures.History(epochs: 1, withBoxes: false));
        Assert.That(File.Exists(Path.Combine(dir, RunPlots.IoU)), Is.False);
        using var loss = PngAssert.Decode(Path.Combine(dir, RunPlots.Loss));
        using var acc = PngAssert.Decode(Path.Combine(dir, RunPlots.Accuracy));
    }

    [Test]
    public void RunFinished_WritesReportGalleryAndPlots()
    {
        string dir = ReportFixtures.NewTempDir();
        var eval = ReportFixtures.Eval();
        new RunReporter().RunFinished(dir, "{\n  \"variant\": \"mtl-moe\"\n}", ReportFixtures.History(), eval, ReportFixtures.Experts);

        string report = File.ReadAllText(Path.Combine(dir, RunReport.FileName));
        Assert.That(report, Does.Contain("\"variant\": \"mtl-moe\""));
        Assert.That(report, Does.Contain("| top-1 accuracy | 66.7% |"));
        foreach (var f in new[] { "loss.png", "accuracy.png", "iou.png", "expert_load.png", "lr.png", "gallery/expert_0.png", "gallery/expert_1.png", "gallery/expert_2.png", "gallery/index.md" })
        {
            Assert.That(File.Exists(Path.Combine(dir, f)), Is.True, f);
            Assert.That(report, Does.Contain($"({f})"), $"report.md does not link {f}");
        }
        for (int e = 0; e < ReportFixtures.Experts; e++)
        {
            using var img = PngAssert.Decode(Path.Combine(dir, $"gallery/expert_{e}.png"), minWidth: 640, minHeight: 250);
            // Both boxes and both frame colours must actually be drawn.
            Assert.That(PngAssert.CountNear(img, 0, 210, 255), Is.GreaterThan(200), $"expert {e}: no true-box (cyan) pixels");
            Assert.That(PngAssert.CountNear(img, 255, 0, 200), Is.GreaterThan(200), $"expert {e}: no predicted-box (magenta) pixels");
            Assert.That(PngAssert.CountNear(img, 20, 170, 60, 20), Is.GreaterThan(500), $"expert {e}: no correct (green) frames");
            Assert.That(PngAssert.CountNear(img, 220, 30, 30, 20), Is.GreaterThan(500), $"expert {e}: no wrong (red) frames");
        }
        string index = File.ReadAllText(Path.Combine(dir, "gallery/index.md"));
        Assert.That(index, Does.Contain("(expert_0.png)").And.Contain("(expert_2.png)"));
    }

    [Test]
    public void Report_PerClassAccuracy_MatchesHandComputation_WorstFirst()
    {
        string dir = ReportFixtures.NewTempDir();
        var eval = ReportFixtures.Eval();
        string report = RunReport.Build("{}", ReportFixtures.History(), eval, 3, [], new GalleryResult([null, null, null], []));
        var n = eval.ClassNames;
        // class 1: 1 of 4; class 0: 3 of 4; class 2: 4 of 4.
        string r1 = $"| 1 | {n[1]} | 1 | 4 | 25.0% |", r0 = $"| 0 | {n[0]} | 3 | 4 | 75.0% |", r2 = $"| 2 | {n[2]} | 4 | 4 | 100.0% |";
        Assert.That(report, Does.Contain(r1).And.Contain(r0).And.Contain(r2));
        Assert.That(report.IndexOf(r1), Is.LessThan(report.IndexOf(r0)));
        Assert.That(report.IndexOf(r0), Is.LessThan(report.IndexOf(r2)));
    }

    [Test]
    public void Report_MostConfusedPairs_MatchHandComputation()
    {
        var eval = ReportFixtures.Eval();
        var pairs = ReportAnalysis.MostConfused(eval);
        Assert.That(pairs.Select(p => (p.TrueClass, p.PredictedClass, p.Count)), Is.EqualTo(new[] { (1, 2, 2), (0, 1, 1), (1, 0, 1) }));
        string report = RunReport.Build("{}", [], eval, 3, [], new GalleryResult([], []));
        var n = eval.ClassNames;
        string first = $"| {n[1]} | {n[2]} | 2 | 50.0% (2/4) |", second = $"| {n[0]} | {n[1]} | 1 | 25.0% (1/4) |", third = $"| {n[1]} | {n[0]} | 1 | 25.0% (1/4) |";
        Assert.That(report, Does.Contain(first).And.Contain(second).And.Contain(third));
        Assert.That(report.IndexOf(first), Is.LessThan(report.IndexOf(second)));
        Assert.That(report.IndexOf(second), Is.LessThan(report.IndexOf(third)));
    }

    [Test]
    public void Report_ExpertSpecialisation_MatchesHandComputation()
    {
        var eval = ReportFixtures.Eval();
        var experts = ReportAnalysis.Experts(eval, 3);
        // Expert 0 gets images i with i%3==0 (gate .7: ids 1,4,7,10) or (i+1)%3==0 (gate .3: ids 3,6,9,12).
        Assert.That(experts[0].Routed, Is.EqualTo(8));
        Assert.That(experts[0].TopRouted, Is.EqualTo(4));
        Assert.That(experts[0].MeanGate, Is.EqualTo(0.5).Within(1e-12));
        // Of ids 1,3,4,6,7,9,10,12: correct are 1,3 (class 0), 6? no (1→2), 7? no, 9,10,12 (class 2) → 5 of 8.
        Assert.That(experts[0].Accuracy, Is.EqualTo(5 / 8.0).Within(1e-12));
        string report = RunReport.Build("{}", [], eval, 3, [], new GalleryResult([], []));
        Assert.That(report, Does.Contain("| 0 | 8 | 4 | 0.500 | 62.5% |"));
    }

    [Test]
    public void MissingImage_IsSkippedWithNote_NotACrash()
    {
        string dir = ReportFixtures.NewTempDir();
        string missing = Path.Combine(dir, "no-such-image.jpg");
        var eval = ReportFixtures.Eval((id, path) => id == 12 ? missing : path);
        new RunReporter().RunFinished(dir, "{}", ReportFixtures.History(), eval, ReportFixtures.Experts);
        string report = File.ReadAllText(Path.Combine(dir, RunReport.FileName));
        Assert.That(report, Does.Contain("image 12 skipped: file not found"));
        Assert.That(File.ReadAllText(Path.Combine(dir, "gallery/index.md")), Does.Contain("image 12 skipped"));
        for (int e = 0; e < 3; e++) using (PngAssert.Decode(Path.Combine(dir, $"gallery/expert_{e}.png"), 640, 250)) { }
    }

    [Test]
    public void NoLoadableImages_AndNoBoxHead_GalleryNotesEveryExpert()
    {
        string dir = ReportFixtures.NewTempDir();
        var eval = ReportFixtures.Eval((_, _) => null, withBoxes: false);
        new RunReporter().RunFinished(dir, "{}", ReportFixtures.History(withBoxes: false), eval, 4);
        string report = File.ReadAllText(Path.Combine(dir, RunReport.FileName));
        Assert.That(report, Does.Contain("expert 0: none of its 8 images could be loaded"));
        Assert.That(report, Does.Contain("expert 3: no test images routed to it"));
        Assert.That(report, Does.Contain("| mean box IoU | – |"));
        Assert.That(Directory.GetFiles(Path.Combine(dir, "gallery"), "*.png"), Is.Empty);
        Assert.That(File.Exists(Path.Combine(dir, "iou.png")), Is.False);
    }
}
