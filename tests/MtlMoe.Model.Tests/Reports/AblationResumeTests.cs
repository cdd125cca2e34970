using MtlMoe.Model.Training;
using MtlMoe.Tests.Data;
using MtlMoe.Train;
using MtlMoe.Train.Reports;

namespace MtlMoe.Tests.Reports;

/// <summary>ablate run again into the same --out continues the runs it finds instead of refusing or redoing them.</summary>
[NonParallelizable] // swaps Console.Out/Error to capture the ablation's progress
public class AblationResumeTests
{
    private static readonly string[] Tiny =
        ["--data", TestSets.MasterRoot, "--res", "32", "--resize", "36", "--width", "0.125", "--batch", "4", "--max-batches", "1",
         "--workers", "1", "--device", "cpu", "--plain"];

    private static (int Code, string Printed) Ablate(params string[] args)
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        var o = new StringWriter();
        Console.SetOut(o); Console.SetError(o);
        try { return (App.Run(["ablate", .. Tiny, .. args], o, o), o.ToString()); }
        finally { Console.SetOut(stdout); Console.SetError(stderr); }
    }

    private static int EpochsIn(string runDir) => File.ReadAllLines(Path.Combine(runDir, RunFiles.Metrics)).Length - 1;

    [Test]
    public void ASecondAblateContinuesEveryVariantAndExtendsTheEpochs()
    {
        string dir = Path.Combine(ReportFixtures.NewTempDir(), "ablate");
        var first = Ablate("--epochs", "1", "--out", dir);
        Assert.That(first.Code, Is.EqualTo(0), first.Printed);
        Assert.That(first.Printed, Does.Not.Contain("continuing"));

        var again = Ablate("--epochs", "2", "--out", dir);
        Assert.That(again.Code, Is.EqualTo(0), again.Printed);
        foreach (var v in new[] { "single", "moe", "mtl", "mtl-moe" })
        {
            Assert.That(again.Printed, Does.Contain($"── ablate: {v} (continuing {Path.Combine(dir, v)}) ──"));
            Assert.That(EpochsIn(Path.Combine(dir, v)), Is.EqualTo(2), v);
        }
        Assert.That(File.ReadAllText(Path.Combine(dir, AblationReport.Markdown)), Does.Contain("| mtl-moe |"));
    }

    [Test]
    public void AFolderHoldingAnotherRecipeIsRefusedNamingWhatDiffers()
    {
        string dir = Path.Combine(ReportFixtures.NewTempDir(), "ablate");
        Assert.That(Ablate("--epochs", "1", "--out", dir).Code, Is.EqualTo(0));
        string metrics = File.ReadAllText(Path.Combine(dir, "single", RunFiles.Metrics));

        var other = Ablate("--epochs", "1", "--lr", "0.05", "--out", dir);
        Assert.That(other.Code, Is.EqualTo(2), other.Printed);
        Assert.That(other.Printed, Does.Contain($"error: {Path.Combine(dir, "single")} already holds a run with other settings (Lr: "));
        Assert.That(File.ReadAllText(Path.Combine(dir, "single", RunFiles.Metrics)), Is.EqualTo(metrics), "the existing run is untouched");
    }
}
