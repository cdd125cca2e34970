using System.Reflection;
using MtlMoe.Model.Training;
using MtlMoe.Train.Cli;

namespace MtlMoe.Train.Commands;

/// <summary>
/// Lets an interrupted <c>ablate</c> continue: a variant whose run folder already holds a checkpoint is resumed
/// (a finished one is only re-evaluated), but only when that run was started with the settings this ablation
/// asks for, so a table never mixes two recipes.
/// </summary>
public static class AblationResume
{
    /// <summary>Settings that may differ between the saved run and this invocation (where and how it runs).</summary>
    private static readonly HashSet<string> Ignored =
        ["Command", "Data", "Device", "Threads", "Workers", "Out", "Resume", "Inputs", "Plain", "Tf32", "Given", "Debug", "Epochs", "Seeds"];

    /// <summary>
    /// The settings that train <paramref name="requested"/> into <paramref name="runDir"/>: unchanged when the folder
    /// holds no checkpoint, else a resume of it with the options --resume accepts carried over (--epochs extends the
    /// schedule; --device, --threads, --plain … say where and how it runs now).
    /// Throws a <see cref="UsageException"/> naming the settings that differ when the folder holds another recipe.
    /// </summary>
    public static TrainSettings Plan(TrainSettings requested, string runDir, out bool resumed)
    {
        resumed = RunCheckpoints.HasCheckpoint(runDir);
        if (!resumed) return requested;
        var saved = RunSetup.ReadSettings(runDir);
        var differ = Differences(saved, requested);
        if (differ.Count > 0)
            throw new UsageException($"{runDir} already holds a run with other settings ({string.Join(", ", differ)}); " +
                "give the ablation another --out, or the same options as that run");
        // What this invocation says about where and how to run (and --epochs) carries over, as with --resume.
        var given = requested.Given.Where(n => ResumeSettings.Changeable.Contains(n)).ToArray();
        return requested with { Resume = runDir, Out = null, Given = given };
    }

    /// <summary>The names of the settings, outside where and how a run executes, in which the two differ.</summary>
    public static List<string> Differences(TrainSettings a, TrainSettings b) =>
        typeof(TrainSettings).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanRead && !Ignored.Contains(p.Name))
            .Where(p => !Equals(p.GetValue(a), p.GetValue(b)))
            .Select(p => $"{p.Name}: {p.GetValue(a) ?? "none"} there, {p.GetValue(b) ?? "none"} here")
            .ToList();
}
