using MtlMoe.Bench;

// Usage: dotnet run -c Release --project tools/Bench -- <workload> [--option value ...]
var workloads = typeof(IWorkload).Assembly.GetTypes()
    .Where(t => typeof(IWorkload).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
    .Select(t => (IWorkload)Activator.CreateInstance(t)!)
    .OrderBy(w => w.Name, StringComparer.Ordinal)
    .ToList();

void Usage()
{
    Console.Error.WriteLine("usage: Bench <workload> [--option value ...]");
    Console.Error.WriteLine("workloads:");
    foreach (var w in workloads) Console.Error.WriteLine($"  {w.Name,-16} {w.Description}");
}

if (args.Length == 0 || args[0] is "-h" or "--help") { Usage(); return args.Length == 0 ? 2 : 0; }
var workload = workloads.FirstOrDefault(w => w.Name == args[0]);
if (workload is null) { Console.Error.WriteLine($"unknown workload '{args[0]}'"); Usage(); return 2; }
try
{
    var options = new BenchOptions(args.Skip(1));
    var output = new JsonLines();
    workload.Run(options, output);
    foreach (var u in options.Unused) Console.Error.WriteLine($"warning: option --{u} was not used by '{workload.Name}'");
    return 0;
}
catch (MtlMoe.Engine.DeviceUnavailableException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 3;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Usage();
    return 2;
}
