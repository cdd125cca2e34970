using MtlMoe.Train.Reports;

namespace MtlMoe.Tests.Reports;

public class AblationReportTests
{
    private static readonly MtlMoe.Model.Training.AblationRow[] Rows =
    [
        ReportFixtures.Row("single", 0.61, 0.63, double.NaN, 3, 100),
        ReportFixtures.Row("moe", 0.64, 0.66, double.NaN, 2, 120),
        ReportFixtures.Row("mtl", 0.70, 0.71, 0.55, 2, 110),
        ReportFixtures.Row("mtl-moe", 0.74, 0.75, 0.62, null, 130),
    ];

    [Test]
    public void AblationFinished_WritesTableSentenceAndCharts()
    {
        string dir = ReportFixtures.NewTempDir();
        new RunReporter().AblationFinished(dir, Rows);
        string md = File.ReadAllText(Path.Combine(dir, AblationReport.Markdown));
        Assert.That(md, Does.Contain("| single | 61.0% | 63.0% | – | 3 | 1m40s |"));
        Assert.That(md, Does.Contain("| mtl-moe | 74.0% | 75.0% | 0.620 | not reached | 2m10s |"));
        Assert.That(md, Does.Contain("mtl-moe won with 74.0% final test top-1, 4.0 points ahead of mtl (70.0%)"));
        Assert.That(md, Does.Contain("(ablation.png)").And.Contain("(ablation_curves.png)"));
        foreach (var f in new[] { AblationReport.Chart, AblationReport.Curves })
        {
            using var img = PngAssert.Decode(Path.Combine(dir, f));
            Assert.That(PngAssert.DistinctColours(img), Is.GreaterThan(5), f);
        }
    }

    [Test]
    public void Verdict_CallsSmallMarginsATie()
    {
        var rows = new[] { ReportFixtures.Row("single", 0.702, 0.71, double.NaN, 2, 10), ReportFixtures.Row("mtl-moe", 0.698, 0.72, 0.6, 2, 10) };
        Assert.That(AblationReport.Verdict(rows), Does.StartWith("No clear winner: single ended highest"));
    }
}
