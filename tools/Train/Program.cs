using MtlMoe.Train.Cli;

// Entry point of tools/Train. Commands are wired in as they land.
try
{
    var settings = CommandLine.Parse(args);
    Console.Error.WriteLine($"'{settings.Command}' is not implemented yet in this build.");
    return 1;
}
catch (UsageException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine(CommandLine.Usage);
    return 2;
}
