using MtlMoe.Model.Training;
using MtlMoe.Tests.Data;
using MtlMoe.Train;
using MtlMoe.Train.Reports;

namespace MtlMoe.Tests.Reports;

/// <summary>ablate --seeds N: mean ± sd per variant and paired differences against mtl-moe.</summary>
public class AblationSeedsTests
{
    private static AblationRow R(string v, ulong seed, double final, double iou = double.NaN) =>
        ReportFixtures.Row(v, final, final + 0.01, iou, 3, 60) with { Seed = seed };

    // mtl-moe 70/72/74; mtl 2, 3 and 1 points below it; single 10–11 points below.
    private static readonly AblationRow[] Rows =
    [
        R("single", 1, 0.60), R("mtl", 1, 0.68, 0.80), R("mtl-moe", 1, 0.70, 0.82),
        R("single", 2, 0.61), R("mtl", 2, 0.69, 0.81), R("mtl-moe", 2, 0.72, 0.84),
        R("single", 3, 0.63), R("mtl", 3, 0.73, 0.82), R("mtl-moe", 3, 0.74, 0.86),
    ];

    [Test]
    public void MeanAndSampleSd()
    {
        var m = MeanSd.Of([0.70, 0.72, 0.74]);
        Assert.That((m.Mean, m.Sd, m.N), Is.EqualTo((0.72, 0.02, 3)).Using<(double, double, int)>((a, b) =>
            Math.Abs(a.Item1 - b.Item1) < 1e-12 && Math.Abs(a.Item2 - b.Item2) < 1e-12 && a.Item3 == b.Item3));
        Assert.That(double.IsNaN(MeanSd.Of([0.5]).Sd));
        // Equal differences up to rounding (as 0.5983 − 0.625 and 0.6133 − 0.64 are) give no t, not t ≈ 1e15.
        var same = MeanSd.Of([0.5983333333333334 - 0.625, 0.6133333333333333 - 0.64]);
        Assert.That(same.AllEqual && double.IsNaN(same.T), Is.True, $"sd {same.Sd}, t {same.T}");
        Assert.That(MeanSd.Of([0.01, 0.02]).AllEqual, Is.False);
    }

    [Test]
    public void MarkdownHasMeansPairedDifferencesAndEveryRun()
    {
        string md = AblationReport.BuildMarkdown(Rows);
        Assert.That(md, Does.Contain("3 seeds (1, 2, 3)"));
        Assert.That(md, Does.Contain("| mtl-moe | 72.0% ± 2.0 | 73.0% ± 2.0 | 0.840 ± 0.020 | 3.0 (3/3 reached) | 1m00s |"));
        Assert.That(md, Does.Contain("| single | 61.3% ± 1.5 |"));
        Assert.That(md, Does.Contain("| mtl | −2.0 | −3.0 | −1.0 | −2.0 ± 1.0 | -3.46 |"));
        Assert.That(md, Does.Contain("| single | −10.0 | −11.0 | −11.0 | −10.7 ± 0.6 |"));
        Assert.That(md, Does.Contain("| 2 | mtl | 69.0% | 70.0% | 0.810 | 1m00s |"));
    }

    [Test]
    public void TheVerdictRunsNoTestWhenEverySeedGivesTheSameDifference()
    {
        // The two-seed scratch ablation's mtl: −2.7 points on both seeds, equal up to rounding.
        AblationRow[] rows = [R("mtl", 1, 0.5983333333333334), R("mtl-moe", 1, 0.625), R("mtl", 2, 0.6133333333333333), R("mtl-moe", 2, 0.64)];
        string v = AblationSeeds.Verdict(rows);
        Assert.That(v, Is.EqualTo("mtl differs from mtl-moe by −2.7 points on every seed alike (no t-test with zero spread, n = 2)."));
    }

    [Test]
    public void TheVerdictTestsEachPairedDifference()
    {
        string v = AblationSeeds.Verdict(Rows);
        Assert.That(v, Does.Contain("single is 10.7 points below mtl-moe (paired t = -32.00, n = 3, p < 0.05)"));
        Assert.That(v, Does.Contain("mtl differs from mtl-moe by −2.0 points, within the seeds' noise (paired t = -3.46, n = 3)"));
    }

    [Test]
    [NonParallelizable] // swaps Console.Out/Error to capture the ablation's progress
    public void AblateWithTwoSeedsRunsEveryVariantTwiceAndWritesTheComparison()
    {
        string dir = Path.Combine(ReportFixtures.NewTempDir(), "ablate");
        var (stdout, stderr) = (Console.Out, Console.Error);
        var o = new StringWriter();
        Console.SetOut(o); Console.SetError(o);
        int code;
        try
        {
            code = App.Run(["ablate", "--seeds", "2", "--seed", "5", "--data", TestSets.MasterRoot, "--res", "32", "--resize", "36", "--width", "0.125",
                "--epochs", "1", "--batch", "4", "--max-batches", "1", "--workers", "1", "--device", "cpu", "--plain", "--out", dir], o, o);
        }
        finally { Console.SetOut(stdout); Console.SetError(stderr); }
        Assert.That(code, Is.EqualTo(0), o.ToString());
        foreach (var seed in new[] { 5, 6 })
            foreach (var v in new[] { "single", "moe", "mtl", "mtl-moe" })
                Assert.That(File.Exists(Path.Combine(dir, $"seed{seed}", v, RunFiles.Config)), $"seed {seed} {v}");
        string md = File.ReadAllText(Path.Combine(dir, AblationReport.Markdown));
        Assert.That(md, Does.Contain("2 seeds (5, 6)").And.Contain("| variant | seed 5 | seed 6 | mean ± sd | paired t |"));
        Assert.That(o.ToString(), Does.Contain("(mean ± sd over 2 seeds)"));
    }

    [Test]
    public void SeedsIsAnAblateOption()
    {
        var e = new StringWriter();
        Assert.That(App.Run(["--seeds", "3"], TextWriter.Null, e), Is.EqualTo(2));
        Assert.That(e.ToString(), Does.StartWith("error: --seeds does not apply to train"));
    }
}
