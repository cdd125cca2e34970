namespace MtlMoe.Model.IO;

/// <summary>
/// Writes files so that a crash never leaves a half-written file at the destination: the bytes go to a
/// temporary file in the same folder (<c>.NAME.PID.GUID.tmp</c>), are flushed to disk, then renamed over the
/// destination.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/> into a temp file, then renames it to <paramref name="path"/>.</summary>
    public static void Write(string path, Action<Stream> write) => Write(DiskFileOps.Instance, path, write);

    /// <summary>As <see cref="Write(string, Action{Stream})"/> through <paramref name="fs"/>.</summary>
    public static void Write(IFileOps fs, string path, Action<Stream> write) => ViaTemp(fs, path, tmp => fs.WriteFile(tmp, write));

    /// <summary>Writes text atomically (UTF-8).</summary>
    public static void WriteAllText(string path, string text) => WriteAllText(DiskFileOps.Instance, path, text);

    /// <summary>Writes text atomically (UTF-8) through <paramref name="fs"/>.</summary>
    public static void WriteAllText(IFileOps fs, string path, string text) => Write(fs, path, s => WriteText(s, text));

    /// <summary>Replaces <paramref name="destination"/> by a copy of <paramref name="source"/> (copy beside it, then rename).</summary>
    public static void Copy(IFileOps fs, string source, string destination) => ViaTemp(fs, destination, tmp => fs.CopyFile(source, tmp));

    // Creates the temp file beside the destination, then renames it over; on failure the temp file goes again.
    private static void ViaTemp(IFileOps fs, string path, Action<string> create)
    {
        var (full, tmp) = TempBeside(path);
        try
        {
            create(tmp);
            fs.ReplaceFile(tmp, full);
        }
        catch
        {
            try { fs.DeleteFile(tmp); } catch (Exception) { /* the next start cleans it */ }
            throw;
        }
    }

    /// <summary>True for the name of a temporary file this class (or the engine's safetensors writer) leaves after a crash.</summary>
    public static bool IsTempName(string fileName) => fileName.StartsWith('.') && fileName.EndsWith(".tmp", StringComparison.Ordinal);

    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark.</summary>
    public static void WriteText(Stream s, string text)
    {
        using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true);
        w.Write(text);
    }

    private static (string Full, string Tmp) TempBeside(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        return (full, Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp"));
    }
}
