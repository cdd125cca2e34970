using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MtlMoe.Model.IO;

/// <summary>The one spelling of an enum member on the command line and in JSON files (e.g. <c>"mtl-moe"</c>).</summary>
[AttributeUsage(AttributeTargets.Field)]
public sealed class ChoiceNameAttribute(string name) : Attribute
{
    /// <summary>The spelling.</summary>
    public string Name { get; } = name;
}

/// <summary>
/// Maps the members of an enum whose fields carry <see cref="ChoiceNameAttribute"/> to and from their spellings.
/// The enum's definition is the one place that names its choices: options, config.json and checkpoint metadata
/// all go through here, so a run folder written before the enums existed still reads.
/// </summary>
public static class ChoiceNames
{
    private static readonly ConcurrentDictionary<Type, (string[] Names, Enum[] Values)> Tables = new();

    private static (string[] Names, Enum[] Values) Table(Type t) => Tables.GetOrAdd(t, type =>
    {
        var fields = type.GetFields(BindingFlags.Public | BindingFlags.Static);
        var names = new string[fields.Length];
        var values = new Enum[fields.Length];
        for (int i = 0; i < fields.Length; i++)
        {
            names[i] = fields[i].GetCustomAttribute<ChoiceNameAttribute>()?.Name
                ?? throw new InvalidOperationException($"{type.Name}.{fields[i].Name} has no [ChoiceName]");
            values[i] = (Enum)fields[i].GetValue(null)!;
        }
        return (names, values);
    });

    /// <summary>The spelling of <paramref name="value"/>.</summary>
    public static string Name<T>(T value) where T : struct, Enum
    {
        var (names, values) = Table(typeof(T));
        int i = Array.IndexOf(values, value);
        return i >= 0 ? names[i] : throw new ArgumentOutOfRangeException(nameof(value), value, $"{typeof(T).Name}: not a named choice");
    }

    /// <summary>The spelling of <paramref name="value"/> (for messages and file names).</summary>
    public static string ToChoiceName<T>(this T value) where T : struct, Enum => Name(value);

    /// <summary>Every spelling, in declaration order.</summary>
    public static IReadOnlyList<string> Names<T>() where T : struct, Enum => Table(typeof(T)).Names;

    /// <summary>Every member, in declaration order.</summary>
    public static IReadOnlyList<T> Values<T>() where T : struct, Enum => Table(typeof(T)).Values.Cast<T>().ToArray();

    /// <summary>The member spelt <paramref name="name"/> (exact, case-sensitive), if any.</summary>
    public static bool TryParse<T>(string? name, out T value) where T : struct, Enum
    {
        var (names, values) = Table(typeof(T));
        int i = name is null ? -1 : Array.IndexOf(names, name);
        value = i >= 0 ? (T)values[i] : default;
        return i >= 0;
    }

    /// <summary>The member spelt <paramref name="name"/>; otherwise an <see cref="ArgumentException"/> listing the choices.</summary>
    public static T Parse<T>(string? name, string what) where T : struct, Enum
        => TryParse<T>(name, out var v) ? v : throw new ArgumentException($"{what} must be one of {string.Join(", ", Names<T>())}, got '{name}'");
}

/// <summary>Reads and writes an enum as its <see cref="ChoiceNameAttribute"/> spelling.</summary>
public sealed class ChoiceJsonConverter<T> : JsonConverter<T> where T : struct, Enum
{
    /// <inheritdoc />
    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var s = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        if (ChoiceNames.TryParse<T>(s, out var v)) return v;
        throw new JsonException($"expected one of {string.Join(", ", ChoiceNames.Names<T>())}, got {(s is null ? reader.TokenType.ToString() : $"'{s}'")}");
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(ChoiceNames.Name(value));
}
