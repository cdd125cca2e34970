using MtlMoe.Model.Data;

namespace MtlMoe.Tests.Data;

/// <summary>Small generated CUB-layout folders for the data tests.</summary>
internal static class TestSets
{
    /// <summary>3 classes × 4 images at 64×64, half train.</summary>
    public static readonly SyntheticBirdsOptions Small = new() { Classes = 3, ImagesPerClass = 4, Width = 64, Height = 64, Seed = 11 };

    private static readonly Lazy<(string Root, SyntheticBird[] Birds)> Master = new(() =>
    {
        string dir = NewTempDir();
        string root = Path.Combine(dir, "CUB_200_2011");
        var birds = SyntheticBirds.WriteCub(root, Small);
        return (root, birds);
    });

    /// <summary>The pristine generated set (do not modify).</summary>
    public static string MasterRoot => Master.Value.Root;

    /// <summary>The birds written into <see cref="MasterRoot"/>.</summary>
    public static SyntheticBird[] MasterBirds => Master.Value.Birds;

    /// <summary>A fresh copy of the generated set that a test may break.</summary>
    public static string CopyOfMaster()
    {
        string dst = Path.Combine(NewTempDir(), "CUB_200_2011");
        foreach (var f in Directory.GetFiles(MasterRoot, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dst, Path.GetRelativePath(MasterRoot, f));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(f, target);
        }
        return dst;
    }

    public static string NewTempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "mtlmoe-data-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Replaces line <paramref name="line"/> (1-based) of a metadata file.</summary>
    public static void ReplaceLine(string root, string file, int line, string text)
    {
        var path = Path.Combine(root, file);
        var lines = File.ReadAllLines(path);
        lines[line - 1] = text;
        File.WriteAllLines(path, lines);
    }

    /// <summary>Path of image <paramref name="id"/> as listed in images.txt.</summary>
    public static string ImagePath(string root, int id)
        => Path.Combine(root, "images", File.ReadAllLines(Path.Combine(root, "images.txt"))[id - 1].Split(' ')[1]);
}
