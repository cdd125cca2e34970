using System.Globalization;

namespace MtlMoe.Bench;

/// <summary>"--key value" and "--flag" options after the workload name.</summary>
public sealed class BenchOptions
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    /// <summary>Parses arguments after the workload name; throws <see cref="ArgumentException"/> on malformed input.</summary>
    public BenchOptions(IEnumerable<string> args)
    {
        string? key = null;
        foreach (var a in args)
        {
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                if (key is not null) _values[key] = null;
                key = a[2..];
                if (key.Length == 0) throw new ArgumentException("empty option name '--'");
            }
            else if (key is not null) { _values[key] = a; key = null; }
            else throw new ArgumentException($"unexpected argument '{a}' (options look like --name value)");
        }
        if (key is not null) _values[key] = null;
    }

    /// <summary>True when --name was given (with or without a value).</summary>
    public bool Flag(string name) { _used.Add(name); return _values.ContainsKey(name); }

    /// <summary>String option.</summary>
    public string Str(string name, string fallback)
    {
        _used.Add(name);
        return _values.TryGetValue(name, out var v) && v is not null ? v : fallback;
    }

    /// <summary>Integer option.</summary>
    public int Int(string name, int fallback)
    {
        var s = Str(name, "");
        if (s == "") return fallback;
        return int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
            : throw new ArgumentException($"--{name} expects an integer, got '{s}'");
    }

    /// <summary>Comma-separated integers ("256,512").</summary>
    public int[] Ints(string name, int[] fallback)
    {
        var s = Str(name, "");
        if (s == "") return fallback;
        return s.Split(',').Select(x => int.TryParse(x, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
            : throw new ArgumentException($"--{name} expects comma-separated integers, got '{s}'")).ToArray();
    }

    /// <summary>Options given but never read by the workload (typos).</summary>
    public IEnumerable<string> Unused => _values.Keys.Where(k => !_used.Contains(k));
}
