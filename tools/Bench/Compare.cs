using System.Globalization;
using System.Text.Json;

namespace MtlMoe.Bench;

/// <summary>
/// Before/after comparison of JSON-line measurements: lines match when every field except the measured ones
/// (ms, gflops, images_per_s, min_ms, best_gflops, …) is equal. Prints one JSON line per match on stdout
/// and a short table on stderr.
/// </summary>
public static class Compare
{
    // Fields that are results, not parameters.
    private static readonly HashSet<string> Measured = new(StringComparer.Ordinal)
        { "ms", "gflops", "images_per_s", "min_ms", "best_gflops", "gbps", "rows_per_s", "samples_per_s", "images_s", "mb_s" };

    /// <summary>Reads a file written by --save: one JSON object per line (other lines are skipped).</summary>
    public static List<Dictionary<string, JsonElement>> Load(string path)
    {
        var rows = new List<Dictionary<string, JsonElement>>();
        foreach (var line in File.ReadLines(path))
        {
            var t = line.Trim();
            if (!t.StartsWith('{')) continue;
            rows.Add(JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(t)!);
        }
        return rows;
    }

    /// <summary>
    /// The parameter part of a measurement as a canonical string. A workload name ending in "-torch" (the PyTorch
    /// baseline scripts) counts as ours, so a saved PyTorch run can be the "before" side.
    /// </summary>
    public static string Key(IEnumerable<KeyValuePair<string, string>> fields) =>
        string.Join(", ", fields.Where(kv => !Measured.Contains(kv.Key)).OrderBy(kv => kv.Key switch { "workload" => 0, "phase" => 1, "shape" => 2, _ => 3 })
            .ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={(kv.Key == "workload" && kv.Value.EndsWith("-torch", StringComparison.Ordinal) ? kv.Value[..^6] : kv.Value)}"));

    private static string Text(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();

    private static string Text(object? o) => o switch
    {
        null => "null",
        string s => s,
        bool b => b ? "true" : "false",
        IFormattable f => JsonSerializer.Serialize(o),
        _ => o.ToString()!,
    };

    /// <summary>
    /// Matches each of <paramref name="after"/> with the first unused baseline line of the same key and writes
    /// {"compare":…, "before_ms", "after_ms", "speedup"}; returns the number of matches.
    /// </summary>
    public static int Run(List<Dictionary<string, JsonElement>> before, IReadOnlyList<Dictionary<string, object?>> after, TextWriter table)
    {
        var pool = before.Select(b => (Key: Key(b.Select(kv => new KeyValuePair<string, string>(kv.Key, Text(kv.Value)))), Row: b)).ToList();
        var used = new bool[pool.Count];
        int matched = 0;
        table.WriteLine($"{"measurement",-70} {"before ms",10} {"after ms",10} {"speed-up",8}");
        foreach (var a in after)
        {
            if (!a.TryGetValue("ms", out var msObj) || msObj is null) continue;
            string key = Key(a.Select(kv => new KeyValuePair<string, string>(kv.Key, Text(kv.Value))));
            int i = pool.FindIndex(p => p.Key == key);
            while (i >= 0 && used[i]) { int next = pool.FindIndex(i + 1, p => p.Key == key); i = next; }
            if (i < 0 || !pool[i].Row.TryGetValue("ms", out var bms)) { table.WriteLine($"{Short(key),-70} {"—",10} {Convert.ToDouble(msObj, CultureInfo.InvariantCulture),10:F3} {"(new)",8}"); continue; }
            used[i] = true; matched++;
            double b = bms.GetDouble(), am = Convert.ToDouble(msObj, CultureInfo.InvariantCulture);
            double speedup = am > 0 ? b / am : double.NaN;
            Console.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["compare"] = key, ["before_ms"] = b, ["after_ms"] = am, ["speedup"] = Math.Round(speedup, 3),
            }));
            table.WriteLine($"{Short(key),-70} {b,10:F3} {am,10:F3} {speedup,7:F2}×");
        }
        return matched;
    }

    private static string Short(string key)
    {
        key = key.Replace(", device=cpu", "").Replace(", groups=1", "");
        return key.Length <= 70 ? key : key[..67] + "...";
    }
}
