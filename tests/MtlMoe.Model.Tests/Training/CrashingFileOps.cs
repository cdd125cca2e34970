using MtlMoe.Model.IO;

namespace MtlMoe.Tests.Training;

/// <summary>Thrown by <see cref="CrashingFileOps"/> in place of a kill -9.</summary>
internal sealed class SimulatedCrashException() : Exception("simulated crash");

/// <summary>
/// The real file system, counting operations once armed; operation <see cref="CrashAt"/> completes (or, when
/// <see cref="Torn"/>, writes only half its bytes) and then the "process dies": that and every later operation
/// throws, so no clean-up code can touch the disk any more — as after a kill.
/// </summary>
internal sealed class CrashingFileOps(int crashAt, bool torn) : IFileOps
{
    private readonly IFileOps _disk = DiskFileOps.Instance;
    private bool _dead;

    public int CrashAt { get; } = crashAt;
    public bool Torn { get; } = torn;
    /// <summary>Count operations from now on.</summary>
    public bool Armed { get; set; }
    /// <summary>Operations counted so far.</summary>
    public int Count { get; private set; }
    /// <summary>Names of the counted operations, in order.</summary>
    public List<string> Log { get; } = new();

    private bool Step(string what, string path)
    {
        if (_dead) throw new SimulatedCrashException();
        if (!Armed) return false;
        Count++;
        Log.Add($"{what} {Path.GetFileName(path)}");
        return Count == CrashAt;
    }

    private void Die() { _dead = true; throw new SimulatedCrashException(); }

    private static void Truncate(string path)
    {
        if (!File.Exists(path)) return;
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.SetLength(f.Length / 2);
    }

    public void CreateDirectory(string path) { bool crash = Step("mkdir", path); _disk.CreateDirectory(path); if (crash) Die(); }

    public void WriteFile(string path, Action<Stream> write)
    {
        bool crash = Step("write", path);
        _disk.WriteFile(path, write);
        if (crash) { if (Torn) Truncate(path); Die(); }
    }

    public void WriteFileAt(string path, Action<string> writeAt)
    {
        bool crash = Step("write", path);
        _disk.WriteFileAt(path, writeAt);
        if (crash) { if (Torn) Truncate(path); Die(); }
    }

    public void CopyFile(string source, string destination)
    {
        bool crash = Step("copy", destination);
        _disk.CopyFile(source, destination);
        if (crash) { if (Torn) Truncate(destination); Die(); }
    }

    public void ReplaceFile(string source, string destination) { bool crash = Step("rename", destination); _disk.ReplaceFile(source, destination); if (crash) Die(); }
    public void MoveDirectory(string source, string destination) { bool crash = Step("rename-dir", destination); _disk.MoveDirectory(source, destination); if (crash) Die(); }
    public void DeleteFile(string path) { bool crash = Step("delete", path); _disk.DeleteFile(path); if (crash) Die(); }
    public void DeleteDirectory(string path) { bool crash = Step("delete-dir", path); _disk.DeleteDirectory(path); if (crash) Die(); }
}
