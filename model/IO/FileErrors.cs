using System.Text.Json;
using MtlMoe.Engine.IO;

namespace MtlMoe.Model.IO;

/// <summary>
/// Turns the exceptions that reading or writing one known file can raise (malformed safetensors, bad JSON, a
/// missing file, no permission, a full disk) into a <see cref="FileProblemException"/> that names that file.
/// </summary>
public static class FileErrors
{
    /// <summary>Runs <paramref name="read"/>, which reads <paramref name="path"/>; rethrows its file errors as one that names the file.</summary>
    public static T About<T>(string path, Func<T> read, string? hint = null)
    {
        try { return read(); }
        catch (Exception e) when (Translate(path, e, hint) is { } p) { throw p; }
    }

    /// <summary>As <see cref="About{T}"/> for an action.</summary>
    public static void About(string path, Action act, string? hint = null) => About(path, () => { act(); return 0; }, hint);

    /// <summary>The <see cref="FileProblemException"/> for <paramref name="e"/> raised while using <paramref name="path"/>, or null when it is not a file error.</summary>
    public static FileProblemException? Translate(string path, Exception e, string? hint = null)
    {
        string Add(string what) => hint is null ? what : $"{what}; {hint}";
        return e switch
        {
            FileProblemException => null,
            SafetensorsFormatException s => new FileProblemException(path, 0, Add("not a valid safetensors file: " + StripPrefix(s.Message, path)), e),
            EndOfStreamException s => new FileProblemException(path, 0, Add("the file ends early (truncated?): " + StripPrefix(s.Message, path)), e),
            JsonException j => new FileProblemException(path, j.LineNumber is long l ? (int)l + 1 : 0, Add($"not valid JSON ({FirstSentence(j.Message)})"), e),
            FileNotFoundException => new FileProblemException(path, 0, Add("file not found"), e),
            DirectoryNotFoundException => new FileProblemException(path, 0, Add("folder not found"), e),
            UnauthorizedAccessException => new FileProblemException(path, 0, Add("permission denied"), e),
            IOException io => new FileProblemException(path, 0, Add(io.Message), e),
            _ => null,
        };
    }

    // The engine's messages begin "safetensors file 'PATH': "; the file is named once, in front.
    private static string StripPrefix(string message, string path)
    {
        string prefix = $"safetensors file '{path}': ";
        return message.StartsWith(prefix, StringComparison.Ordinal) ? message[prefix.Length..] : message;
    }

    // System.Text.Json appends "Path: $.x | LineNumber: 3 | BytePositionInLine: 0." — the line is reported in front.
    private static string FirstSentence(string message)
    {
        int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).TrimEnd('.', ' ');
    }
}
