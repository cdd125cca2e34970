using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;
using MtlMoe.Train.Commands;

// Entry point of tools/Train: parse, dispatch; option errors exit 2, runtime failures exit 1.
return MtlMoe.Train.App.Run(args, Console.Out, Console.Error);

namespace MtlMoe.Train
{
    /// <summary>The program, callable from tests.</summary>
    public static class App
    {
        /// <summary>Runs one command line; returns the exit code.</summary>
        public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken cancel = default)
        {
            TrainSettings settings;
            try { settings = CommandLine.Parse(args); }
            catch (UsageException e)
            {
                error.WriteLine($"error: {e.Message}");
                error.WriteLine(CommandLine.Usage);
                return 2;
            }
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            ConsoleCancelEventHandler onCtrlC = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCtrlC;
            try
            {
                return settings.Command switch
                {
                    "eval" => EvalCommand.Run(settings, output),
                    "predict" => PredictCommand.Run(settings, output),
                    "ablate" => AblateCommand.Run(settings, cts.Token),
                    _ => TrainCommand.Run(settings, cts.Token),
                };
            }
            catch (TrainingDivergedException e) { error.WriteLine($"error: {e.Message}"); return 1; }
            catch (Exception e) when (e is InvalidOperationException or InvalidDataException or FormatException or FileNotFoundException or DirectoryNotFoundException or IOException or ArgumentException)
            {
                error.WriteLine($"error: {e.Message}");
                return 1;
            }
            finally { Console.CancelKeyPress -= onCtrlC; }
        }
    }
}
