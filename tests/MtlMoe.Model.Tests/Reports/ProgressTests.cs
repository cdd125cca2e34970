using MtlMoe.Model.Training;
using MtlMoe.Train.Progress;
using Spectre.Console;

namespace MtlMoe.Tests.Reports;

public class ProgressTests
{
    private sealed class PlainStub : ITrainingProgress
    {
        public void BeginRun(string title, int epochs, int batchesPerEpoch) { }
        public void Batch(int epoch, int batch, double loss, double top1, double imagesPerSecond) { }
        public void Evaluating(int epoch) { }
        public void EndEpoch(EpochMetrics metrics) { }
        public void Message(string text) { }
        public void Dispose() { }
    }

    [Test]
    public void Factory_ReturnsPlain_WhenOutputIsRedirectedOrForced()
    {
        var plain = new PlainStub();
        Assume.That(Console.IsOutputRedirected, Is.True, "the test runner normally redirects stdout");
        Assert.That(ProgressFactory.Create(false, () => plain), Is.SameAs(plain));
        Assert.That(ProgressFactory.Create(true, () => plain), Is.SameAs(plain));
    }

    [TestCase(false, false, true, "xterm-256color", null, ExpectedResult = true)]
    [TestCase(true, false, true, "xterm", null, ExpectedResult = false)]
    [TestCase(false, true, true, "xterm", null, ExpectedResult = false)]
    [TestCase(false, false, false, "xterm", null, ExpectedResult = false)]
    [TestCase(false, false, true, "dumb", null, ExpectedResult = false)]
    [TestCase(false, false, true, "xterm", "true", ExpectedResult = false)]
    [TestCase(false, false, true, "xterm", "false", ExpectedResult = true)]
    public bool Factory_Decision(bool forcePlain, bool redirected, bool interactive, string? term, string? ci)
        => ProgressFactory.UseLive(forcePlain, redirected, interactive, term, ci);

    private static (IAnsiConsole Console, StringWriter Out) TestConsole()
    {
        var sw = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes, ColorSystem = ColorSystemSupport.TrueColor, Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(sw),
        });
        return (console, sw);
    }

    private static EpochMetrics Epoch(int e) => new(e, 2.5 / e, 2.0 / e, 0.4, 0.01, 0.3 * e, 2.4 / e, 0.31 * e, 0.8, 0.55, 0.6, [1.05, 0.95, 1.2, 0.8], 0.01 / e, 3.26, 123.4);

    [Test]
    public void LiveProgress_DrivenLikeTheTrainer_PrintsRowsAndMessages()
    {
        var (console, sw) = TestConsole();
        var live = new LiveProgress(console);
        live.BeginRun("mtl-moe on synthetic birds", 2, 50);
        for (int e = 1; e <= 2; e++)
        {
            for (int b = 1; b <= 50; b++) live.Batch(e, b, 2.0 / b, b / 50.0, 100 + b);
            live.Evaluating(e);
            live.EndEpoch(Epoch(e));
            live.Message($"checkpoint [last] written after epoch {e}"); // brackets must not be read as markup
        }
        live.Dispose();
        live.Dispose(); // idempotent
        Assert.That(live.Failure, Is.Null);
        string text = sw.ToString();
        Assert.That(text, Does.Contain(EpochRowFormat.Row(Epoch(1))).And.Contain(EpochRowFormat.Row(Epoch(2))));
        Assert.That(text, Does.Contain("1.05/0.95/1.20/0.80"));
        Assert.That(text, Does.Contain("checkpoint [last] written after epoch 2"));
        Assert.That(text, Does.Contain("epoch"));
    }

    [Test]
    public void LiveProgress_ManyFastUpdates_AndSecondRun_DoNotHang()
    {
        var (console, sw) = TestConsole();
        using var live = new LiveProgress(console);
        var task = Task.Run(() =>
        {
            for (int run = 0; run < 2; run++)
            {
                live.BeginRun($"run {run}", 1, 5000);
                for (int b = 1; b <= 5000; b++) live.Batch(1, b, 1.0, 0.5, 1000);
                live.EndEpoch(Epoch(1));
            }
        });
        Assert.That(task.Wait(TimeSpan.FromSeconds(20)), Is.True, "live display deadlocked");
        Assert.That(live.Failure, Is.Null);
    }

    [Test]
    public void LiveProgress_MessagesBeforeBeginRun_AndDisposeWithoutRun_Work()
    {
        var (console, sw) = TestConsole();
        var live = new LiveProgress(console);
        live.Message("resumed from runs/x");
        live.Batch(1, 1, 1, 1, 1); // ignored before a run
        live.Dispose();
        Assert.That(sw.ToString(), Does.Contain("resumed from runs/x"));
    }

    [Test]
    public void EpochRow_IsAlignedUnderHeader()
    {
        string row = EpochRowFormat.Row(Epoch(1)), header = EpochRowFormat.Header;
        Assert.That(row.IndexOf("  1.05/"), Is.EqualTo(header.IndexOf("  expert load")), "expert load column misaligned");
        Assert.That(row, Does.StartWith("  1  2.500  2.400  31.0%  80.0% 0.550  60.0%    0.01   3.3  1.05/0.95/1.20/0.80"));
        Assert.That(row.Length, Is.LessThanOrEqualTo(80), "a row with 4 experts must fit 80 columns");
    }
}
