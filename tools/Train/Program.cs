using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;
using MtlMoe.Train.Commands;

// Entry point of tools/Train: parse, dispatch; every failure becomes one line (ErrorReport): options exit 2, the rest 1.
return MtlMoe.Train.App.Run(args, Console.Out, Console.Error);

namespace MtlMoe.Train
{
    /// <summary>The program, callable from tests.</summary>
    public static class App
    {
        /// <summary>Runs one command line; returns the exit code.</summary>
        public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken cancel = default)
        {
            bool debug = ErrorReport.DebugRequested(args);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            ConsoleCancelEventHandler onCtrlC = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCtrlC;
            try
            {
                if (CommandLine.HelpText(args) is { } help)
                {
                    output.Write(help);
                    return 0;
                }
                var settings = CommandLine.Parse(args);
                return settings.Command switch
                {
                    CommandKind.Eval => EvalCommand.Run(settings, output, error, cts.Token),
                    CommandKind.Predict => PredictCommand.Run(settings, output, error, cts.Token),
                    CommandKind.Ablate => AblateCommand.Run(settings, cts.Token),
                    _ => TrainCommand.Run(settings, cts.Token),
                };
            }
            catch (Exception e) { return ErrorReport.Write(e, error, debug); }
            finally { Console.CancelKeyPress -= onCtrlC; }
        }
    }
}
