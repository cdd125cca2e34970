using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using MtlMoe.Model.IO;

namespace MtlMoe.Model.Training;

/// <summary>What one epoch's checkpoint holds, as writers the store calls with the path to write.</summary>
/// <param name="Epoch">Epochs finished (1-based).</param>
/// <param name="WriteModel">Writes the model's weights (safetensors with config metadata) at the given path.</param>
/// <param name="WriteOptimizer">Writes the optimizer's state at the given path.</param>
/// <param name="IsBest">True when this epoch has the best test top-1 so far (its weights become best.safetensors).</param>
/// <param name="StateJson">trainer_state.json: step, best, RNG states, history.</param>
/// <param name="ConfigJson">config.json: what --resume rebuilds the run from.</param>
public sealed record CheckpointContent(int Epoch, Action<string> WriteModel, Action<string> WriteOptimizer, bool IsBest, string StateJson, string ConfigJson);

/// <summary>The files of the committed checkpoint of a run folder.</summary>
/// <param name="Epoch">Its epoch (from the pointer; the legacy layout reads it from trainer_state.json).</param>
/// <param name="Folder">The set's folder (the run folder itself for the legacy layout).</param>
/// <param name="Model">Weights of the last finished epoch.</param>
/// <param name="Optimizer">Optimizer state.</param>
/// <param name="State">trainer_state.json.</param>
/// <param name="Config">config.json of the set (the run folder's for the legacy layout).</param>
/// <param name="Best">Weights of the best epoch, if any.</param>
/// <param name="Legacy">True for a run folder written before checkpoint sets (last.safetensors + trainer_state.*).</param>
public sealed record CommittedCheckpoint(int Epoch, string Folder, string Model, string Optimizer, string State, string Config, string? Best, bool Legacy);

/// <summary>
/// A run folder's checkpoints as one atomic unit. Each epoch writes a complete set — model.safetensors,
/// optimizer.safetensors, trainer_state.json (step, best, RNG states, history), config.json and best.safetensors —
/// into a hidden temporary folder, renames it to <c>ckpt-NNNN/</c>, and commits it by atomically replacing the
/// pointer <c>checkpoint.json</c>. Only then are the user-facing copies (last.safetensors, best.safetensors,
/// config.json at the top) refreshed and the previous set deleted. So at every instant the pointer names one
/// complete, consistent set; a crash leaves at most an uncommitted folder or temp file, which
/// <see cref="CleanStale"/> removes at the next start (under the run lock), and <see cref="Publish"/> brings the
/// top-level copies back in line with the committed set.
/// </summary>
/// <remarks>
/// Files are flushed to disk before each rename; the rename of the folder and of the pointer are not followed by
/// a directory fsync (.NET has no portable call for it), so after a power cut — unlike a kill — the previous set
/// may be the committed one.
/// </remarks>
public sealed partial class RunCheckpoints(string runDir, IFileOps fs)
{
    /// <summary>The commit pointer.</summary>
    public const string Pointer = "checkpoint.json";
    /// <summary>File names inside a set.</summary>
    public const string ModelFile = "model.safetensors", OptimizerFile = "optimizer.safetensors", StateFile = "trainer_state.json",
        ConfigFile = "config.json", BestFile = "best.safetensors";
    /// <summary>Legacy layout (before sets): trainer state beside last.safetensors at the top of the run folder.</summary>
    public const string LegacyState = "trainer_state.json", LegacyOptimizer = "trainer_state.safetensors";

    private const string Format = "mtl-moe-run/2";

    [GeneratedRegex(@"^ckpt-[0-9]{4,9}$")]
    private static partial Regex SetName();

    /// <summary>The run folder.</summary>
    public string RunDir { get; } = runDir;

    /// <summary>The folder name of epoch <paramref name="epoch"/>'s set.</summary>
    public static string FolderName(int epoch) => "ckpt-" + epoch.ToString("D4", CultureInfo.InvariantCulture);

    /// <summary>True when the folder holds a committed checkpoint (either layout).</summary>
    public static bool HasCheckpoint(string runDir)
        => File.Exists(Path.Combine(runDir, Pointer)) || File.Exists(Path.Combine(runDir, LegacyState));

    /// <summary>The committed checkpoint, or null when no epoch has finished. A damaged pointer is a <see cref="FileProblemException"/>.</summary>
    public CommittedCheckpoint? Committed()
    {
        string pointer = Path.Combine(RunDir, Pointer);
        if (File.Exists(pointer))
        {
            var (epoch, folder) = ReadPointer(pointer);
            string dir = Path.Combine(RunDir, folder);
            string best = Path.Combine(dir, BestFile);
            var c = new CommittedCheckpoint(epoch, dir, Path.Combine(dir, ModelFile), Path.Combine(dir, OptimizerFile), Path.Combine(dir, StateFile),
                Path.Combine(dir, ConfigFile), File.Exists(best) ? best : null, Legacy: false);
            foreach (var f in new[] { c.Model, c.Optimizer, c.State, c.Config })
                if (!File.Exists(f)) throw new FileProblemException(f, 0, $"missing from the committed checkpoint named by {pointer}; the run folder was changed by hand");
            return c;
        }
        string legacy = Path.Combine(RunDir, LegacyState);
        if (File.Exists(legacy))
        {
            string top = Path.Combine(RunDir, RunFiles.Best);
            return new CommittedCheckpoint(-1, RunDir, Path.Combine(RunDir, RunFiles.Last), Path.Combine(RunDir, LegacyOptimizer), legacy,
                Path.Combine(RunDir, RunFiles.Config), File.Exists(top) ? top : null, Legacy: true);
        }
        return null;
    }

    private static (int Epoch, string Folder) ReadPointer(string path) => FileErrors.About(path, () =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("format", out var f) || f.GetString() != Format)
            throw new FileProblemException(path, 0, $"not a checkpoint pointer of this program (expected format '{Format}')");
        string folder = root.GetProperty("folder").GetString() ?? "";
        if (!SetName().IsMatch(folder)) throw new FileProblemException(path, 0, $"folder '{folder}' is not a checkpoint folder name (ckpt-NNNN)");
        return (root.GetProperty("epoch").GetInt32(), folder);
    });

    /// <summary>
    /// Writes <paramref name="content"/> as a new set and commits it; then refreshes the top-level copies and
    /// deletes the previous set. The caller must hold the run lock.
    /// </summary>
    public void Save(CheckpointContent content)
    {
        var previous = Committed();
        string name = FolderName(content.Epoch);
        string final = Path.Combine(RunDir, name);
        if (previous is { Legacy: false } && Path.GetFileName(previous.Folder) == name)
            throw new InvalidOperationException($"checkpoint: epoch {content.Epoch} is already committed in {final}");
        string tmp = Path.Combine(RunDir, $".{name}.tmp");

        // 1. The new set, complete, under a name nobody reads.
        fs.DeleteDirectory(tmp);
        fs.CreateDirectory(tmp);
        fs.WriteFileAt(Path.Combine(tmp, ModelFile), content.WriteModel);
        fs.WriteFileAt(Path.Combine(tmp, OptimizerFile), content.WriteOptimizer);
        if (content.IsBest) fs.CopyFile(Path.Combine(tmp, ModelFile), Path.Combine(tmp, BestFile));
        else if (previous?.Best is { } oldBest) fs.CopyFile(oldBest, Path.Combine(tmp, BestFile));
        fs.WriteFile(Path.Combine(tmp, ConfigFile), s => AtomicFile.WriteText(s, content.ConfigJson));
        fs.WriteFile(Path.Combine(tmp, StateFile), s => AtomicFile.WriteText(s, content.StateJson));
        // 2. Its final name (a leftover of a crash between this rename and the commit is not committed: replace it).
        fs.DeleteDirectory(final);
        fs.MoveDirectory(tmp, final);
        // 3. The commit: one rename of the pointer.
        string pointer = JsonSerializer.Serialize(new { format = Format, epoch = content.Epoch, folder = name });
        AtomicFile.WriteAllText(fs, Path.Combine(RunDir, Pointer), pointer);
        // 4. Derived: the top-level copies, then the old set.
        Publish(bestChanged: content.IsBest || previous?.Legacy == true);
        RemoveOldSets(name, legacyToo: true);
    }

    /// <summary>
    /// Brings last.safetensors, best.safetensors and config.json at the top of the run folder in line with the
    /// committed set (atomic copies). <paramref name="bestChanged"/>: also refresh best.safetensors.
    /// </summary>
    public void Publish(bool bestChanged = true)
    {
        var c = Committed();
        if (c is null || c.Legacy) return;
        AtomicFile.Copy(fs, c.Model, Path.Combine(RunDir, RunFiles.Last));
        if (bestChanged && c.Best is not null) AtomicFile.Copy(fs, c.Best, Path.Combine(RunDir, RunFiles.Best));
        AtomicFile.Copy(fs, c.Config, Path.Combine(RunDir, RunFiles.Config));
    }

    /// <summary>
    /// Removes what a crash can leave: temporary set folders, sets the pointer does not name, and temporary files
    /// at the top of the run folder. The caller must hold the run lock (another process's temporaries look alike).
    /// </summary>
    public void CleanStale()
    {
        if (!Directory.Exists(RunDir)) return;
        var committed = Committed();
        foreach (var dir in Directory.EnumerateDirectories(RunDir))
        {
            string n = Path.GetFileName(dir);
            bool tempSet = n.StartsWith(".ckpt-", StringComparison.Ordinal) && n.EndsWith(".tmp", StringComparison.Ordinal);
            bool orphan = SetName().IsMatch(n) && (committed is null || committed.Legacy || Path.GetFileName(committed.Folder) != n);
            if (tempSet || orphan) fs.DeleteDirectory(dir);
        }
        foreach (var file in Directory.EnumerateFiles(RunDir))
            if (AtomicFile.IsTempName(Path.GetFileName(file))) fs.DeleteFile(file);
    }

    private void RemoveOldSets(string keep, bool legacyToo)
    {
        foreach (var dir in Directory.EnumerateDirectories(RunDir, "ckpt-*"))
            if (Path.GetFileName(dir) != keep && SetName().IsMatch(Path.GetFileName(dir))) fs.DeleteDirectory(dir);
        if (!legacyToo) return;
        fs.DeleteFile(Path.Combine(RunDir, LegacyState));
        fs.DeleteFile(Path.Combine(RunDir, LegacyOptimizer));
    }
}
