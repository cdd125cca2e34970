using System.Collections.Concurrent;
using System.Reflection;
using System.Text.RegularExpressions;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// The PTX of our kernels (kernels/*.cu compiled by clang-14, committed under kernels/ptx/), embedded in the engine
/// assembly as <c>MtlMoe.Kernels.&lt;module&gt;.ptx</c>. A module is one .cu file: "pointwise", "reduce", ….
/// </summary>
public static partial class PtxImages
{
    const string Prefix = "MtlMoe.Kernels.";
    const string Suffix = ".ptx";
    static readonly ConcurrentDictionary<string, string> Cache = new();

    /// <summary>Names of every embedded module, sorted.</summary>
    public static IReadOnlyList<string> Modules { get; } = typeof(PtxImages).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(Suffix, StringComparison.Ordinal))
        .Select(n => n[Prefix.Length..^Suffix.Length])
        .Order(StringComparer.Ordinal)
        .ToArray();

    /// <summary>The PTX text of module <paramref name="module"/>; throws naming the embedded modules when it is missing.</summary>
    public static string Get(string module) => Cache.GetOrAdd(module, static m =>
    {
        using var stream = typeof(PtxImages).Assembly.GetManifestResourceStream(Prefix + m + Suffix)
            ?? throw new KeyNotFoundException($"no embedded PTX module '{m}' (embedded: {string.Join(", ", Modules)})");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    /// <summary>The kernel entry points (<c>.visible .entry name(</c>) a PTX text declares.</summary>
    public static IReadOnlyList<string> EntryPoints(string ptx) =>
        EntryRegex().Matches(ptx).Select(m => m.Groups[1].Value).ToArray();

    [GeneratedRegex(@"^\s*\.visible\s+\.entry\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", RegexOptions.Multiline)]
    private static partial Regex EntryRegex();
}
