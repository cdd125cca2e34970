namespace MtlMoe.Model.IO;

/// <summary>
/// The file operations a run folder is written with. Production code uses <see cref="DiskFileOps"/>; tests put a
/// seam here that stops ("crashes") after any operation, to check that every instant leaves a usable folder.
/// Callers add no clean-up of their own around these calls: what a crash leaves is cleaned at the next start.
/// </summary>
public interface IFileOps
{
    /// <summary>Creates a folder (and its parents).</summary>
    void CreateDirectory(string path);

    /// <summary>Creates the new file <paramref name="path"/> through <paramref name="write"/> and flushes it to disk.</summary>
    void WriteFile(string path, Action<Stream> write);

    /// <summary>Creates the new file <paramref name="path"/> with a writer that takes the path (e.g. a safetensors saver that flushes itself).</summary>
    void WriteFileAt(string path, Action<string> writeAt);

    /// <summary>Copies a file to a new path and flushes the copy to disk.</summary>
    void CopyFile(string source, string destination);

    /// <summary>Renames a file over <paramref name="destination"/> in one step (atomic on one file system).</summary>
    void ReplaceFile(string source, string destination);

    /// <summary>Renames a folder to a path that does not exist yet.</summary>
    void MoveDirectory(string source, string destination);

    /// <summary>Deletes a file if it exists.</summary>
    void DeleteFile(string path);

    /// <summary>Deletes a folder and everything in it, if it exists.</summary>
    void DeleteDirectory(string path);
}

/// <summary>The real file system.</summary>
public sealed class DiskFileOps : IFileOps
{
    /// <summary>The one instance.</summary>
    public static DiskFileOps Instance { get; } = new();

    private DiskFileOps() { }

    /// <inheritdoc />
    public void CreateDirectory(string path) => Directory.CreateDirectory(path);

    /// <inheritdoc />
    public void WriteFile(string path, Action<Stream> write)
    {
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        write(fs);
        fs.Flush(flushToDisk: true);
    }

    /// <inheritdoc />
    public void WriteFileAt(string path, Action<string> writeAt) => writeAt(path);

    /// <inheritdoc />
    public void CopyFile(string source, string destination)
    {
        File.Copy(source, destination, overwrite: false);
        using var fs = new FileStream(destination, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        fs.Flush(flushToDisk: true);
    }

    /// <inheritdoc />
    public void ReplaceFile(string source, string destination) => File.Move(source, destination, overwrite: true);

    /// <inheritdoc />
    public void MoveDirectory(string source, string destination) => Directory.Move(source, destination);

    /// <inheritdoc />
    public void DeleteFile(string path) => File.Delete(path);

    /// <inheritdoc />
    public void DeleteDirectory(string path)
    {
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
    }
}
