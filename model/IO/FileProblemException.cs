namespace MtlMoe.Model.IO;

/// <summary>
/// A file that cannot be used as it is: missing, unreadable, malformed or inconsistent. The message always starts
/// with the file (and line, when one applies), <c>runs/x/checkpoint.json:3: …</c>, so a program can print it as
/// one line.
/// </summary>
public class FileProblemException : Exception
{
    /// <summary>The file at fault, as given to the code that read it.</summary>
    public string File { get; }

    /// <summary>1-based line in <see cref="File"/>, or 0 when the problem is not tied to a line.</summary>
    public int Line { get; }

    /// <summary>What is wrong, without the file and line.</summary>
    public string What { get; }

    /// <summary>Builds "file:line: what" (or "file: what" when <paramref name="line"/> is 0).</summary>
    public FileProblemException(string file, int line, string what, Exception? inner = null)
        : base(line > 0 ? $"{file}:{line}: {what}" : $"{file}: {what}", inner)
    {
        File = file; Line = line; What = what;
    }
}
