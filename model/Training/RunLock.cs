using System.Globalization;
using MtlMoe.Model.IO;

namespace MtlMoe.Model.Training;

/// <summary>
/// An operating-system lock on a run folder, held for the run's life: the file <c>.lock</c> in the folder, opened
/// with <see cref="FileShare.None"/> and kept open (on Linux and macOS .NET takes an exclusive <c>flock</c> on it,
/// on Windows a sharing lock). A second process — or a second run in this one — that wants the folder gets a
/// <see cref="FileProblemException"/> saying that it is in use. The kernel drops the lock when the process ends,
/// however it ends, so a killed run never leaves the folder locked. (Setting
/// <c>DOTNET_SYSTEM_IO_DISABLEFILELOCKING</c> turns .NET's file locks, and so this protection, off.)
/// </summary>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file's name.</summary>
    public const string FileName = ".lock";

    private readonly FileStream _stream;
    private readonly bool _created;

    /// <summary>The locked folder (full path).</summary>
    public string RunDir { get; }

    private RunLock(string runDir, FileStream stream, bool created) { RunDir = runDir; _stream = stream; _created = created; }

    /// <summary>Creates the folder if needed and locks it; throws when another run holds it.</summary>
    public static RunLock Acquire(string runDir)
    {
        string dir = Path.GetFullPath(runDir);
        bool created = !Directory.Exists(dir);
        NotUnderAFile(dir);
        FileErrors.About(dir, () => Directory.CreateDirectory(dir), "the run folder cannot be created there");
        string path = Path.Combine(dir, FileName);
        FileStream stream;
        try { stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException or PathTooLongException))
        {
            throw new FileProblemException(dir, 0, "is in use by another run (a training or --resume of this folder is still running: its .lock is held); wait for it to finish or choose another --out", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new FileProblemException(dir, 0, "permission denied (the run folder must be writable); choose another --out", e);
        }
        // Who holds it, for people looking at the folder.
        stream.SetLength(0);
        using (var w = new StreamWriter(stream, leaveOpen: true))
            w.Write(string.Create(CultureInfo.InvariantCulture, $"pid {Environment.ProcessId} on {Environment.MachineName} since {DateTime.UtcNow:u}\n"));
        stream.Flush();
        return new RunLock(dir, stream, created);
    }

    // Directory.CreateDirectory under a regular file says "could not find a part of the path"; say what is wrong.
    private static void NotUnderAFile(string dir)
    {
        for (var d = Path.GetDirectoryName(dir); d is not null; d = Path.GetDirectoryName(d))
        {
            if (File.Exists(d)) throw new FileProblemException(dir, 0, $"cannot be created: {d} is a file, not a folder");
            if (Directory.Exists(d)) return;
        }
    }

    /// <summary>Releases the lock; a folder this lock created that holds nothing else is removed again.</summary>
    public void Dispose()
    {
        _stream.Dispose();
        if (!_created) return;
        try
        {
            if (Directory.EnumerateFileSystemEntries(RunDir).All(e => Path.GetFileName(e) == FileName))
                Directory.Delete(RunDir, recursive: true);
        }
        catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
