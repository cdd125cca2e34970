using MtlMoe.Bench;

// Usage: dotnet run -c Release --project tools/Bench -- <workload> [--option value ...] [--save FILE] [--compare FILE]
var workloads = typeof(IWorkload).Assembly.GetTypes()
    .Where(t => typeof(IWorkload).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
    .Select(t => (IWorkload)Activator.CreateInstance(t)!)
    .OrderBy(w => w.Name, StringComparer.Ordinal)
    .ToList();

void Usage()
{
    Console.Error.WriteLine("usage: Bench <workload> [--option value ...] [--save FILE] [--compare FILE]");
    Console.Error.WriteLine("  --save FILE     also write the JSON lines to FILE");
    Console.Error.WriteLine("  --compare FILE  after running, print before/after ms and speed-up per measurement matching one in FILE");
    Console.Error.WriteLine("workloads:");
    foreach (var w in workloads) Console.Error.WriteLine($"  {w.Name,-16} {w.Description}");
    Console.Error.WriteLine("--ab NAME (conv, resnet18-step, batchnorm, gemm) runs every other repetition with one CPU path switched off:");
    foreach (var line in AbKnobs.Help()) Console.Error.WriteLine(line);
}

if (args.Length == 0 || args[0] is "-h" or "--help") { Usage(); return args.Length == 0 ? 2 : 0; }
var workload = workloads.FirstOrDefault(w => w.Name == args[0]);
if (workload is null) { Console.Error.WriteLine($"unknown workload '{args[0]}'"); Usage(); return 2; }
try
{
    var options = new BenchOptions(args.Skip(1));
    string save = options.Str("save", ""), compare = options.Str("compare", "");
    if (options.Flag("save") && save == "") throw new ArgumentException("--save needs a file name");
    if (options.Flag("compare") && compare == "") throw new ArgumentException("--compare needs a file name");
    var baseline = compare != "" ? Compare.Load(compare) : null; // read first: --save may name the same file
    var output = new JsonLines();
    workload.Run(options, output);
    foreach (var u in options.Unused) Console.Error.WriteLine($"warning: option --{u} was not used by '{workload.Name}'");
    if (save != "") output.SaveTo(save);
    if (baseline is not null && Compare.Run(baseline, output.Written, Console.Error) == 0)
        Console.Error.WriteLine($"compare: no measurement in {compare} has the same workload and parameters");
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
