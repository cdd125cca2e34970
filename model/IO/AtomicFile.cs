namespace MtlMoe.Model.IO;

/// <summary>
/// Writes files so that a crash never leaves a half-written file at the destination: the bytes go to a
/// temporary file in the same folder, are flushed to disk, then renamed over the destination.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/> into a temp file, then renames it to <paramref name="path"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Writes text atomically (UTF-8).</summary>
    public static void WriteAllText(string path, string text)
        => Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true); w.Write(text); });
}
