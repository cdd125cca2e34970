using System.Text.Json;

namespace MtlMoe.Bench;

/// <summary>Writes one JSON object per line on stdout (progress goes to stderr), and optionally to a file for --compare.</summary>
public sealed class JsonLines
{
    private readonly List<Dictionary<string, object?>> _written = new();

    /// <summary>Every line written so far.</summary>
    public IReadOnlyList<Dictionary<string, object?>> Written => _written;

    /// <summary>Writes one measurement.</summary>
    public void Write(Dictionary<string, object?> fields)
    {
        _written.Add(fields);
        Console.Out.WriteLine(JsonSerializer.Serialize(fields));
        Console.Out.Flush();
    }

    /// <summary>Writes every line so far to <paramref name="path"/> (replacing it).</summary>
    public void SaveTo(string path) => File.WriteAllLines(path, _written.Select(f => JsonSerializer.Serialize(f)));
}
