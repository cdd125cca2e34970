using MtlMoe.Train;

namespace MtlMoe.Tests.Training;

/// <summary>Runs tools/Train's entry point in-process and captures what it prints.</summary>
internal static class CliRunner
{
    /// <summary>Exit code, stdout and stderr of one command line.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args) => RunWith(default, args);

    /// <summary>As <see cref="Run"/> with a cancellation token (Ctrl-C).</summary>
    public static (int Code, string Out, string Err) RunWith(CancellationToken cancel, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = App.Run(args, o, e, cancel);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>The first line of a text (without the line break).</summary>
    public static string FirstLine(string text) => text.Split('\n')[0].TrimEnd('\r');

    /// <summary>Options of a tiny, fast training run on the CPU (add --data and --out).</summary>
    public static readonly string[] Tiny =
        ["--res", "32", "--resize", "36", "--width", "0.0625", "--epochs", "1", "--batch", "4", "--experts", "2", "--k", "1",
         "--hidden", "8", "--workers", "0", "--threads", "1", "--device", "cpu", "--plain", "--seed", "5"];
}
