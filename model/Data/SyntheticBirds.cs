using System.Globalization;
using System.Text;
using MtlMoe.Engine;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;

namespace MtlMoe.Model.Data;

/// <summary>One rendered synthetic image with its label and true box (pixels).</summary>
public sealed record SyntheticBird(int ClassIndex, int ImageIndex, RgbImage Image, BoxF Box, bool IsTrain);

/// <summary>
/// The synthetic birds set: procedurally drawn birds (body, head, beak, tail, wing, eye, legs) whose species
/// differ in subtle attributes (wing-bar colour, beak length, crown colour, eye ring, breast pattern, tail shape;
/// see <see cref="BirdSpecies"/>) and vary a lot within a species (posture, rotation, scale, position, mirror,
/// lighting, cluttered backgrounds, partial occlusion). Deterministic from <see cref="SyntheticBirdsOptions.Seed"/>:
/// image j of class c is drawn from an RNG seeded by (seed, c, j) alone, so it can be generated in parallel.
/// It is a stand-in for CUB-200-2011 when no data is given (to exercise classification, MoE routing and
/// localisation end to end); it is not a substitute for real photographs and accuracy on it says nothing
/// about accuracy on CUB.
/// </summary>
public static class SyntheticBirds
{
    /// <summary>The species of a set.</summary>
    public static BirdSpecies[] Species(SyntheticBirdsOptions options) => BirdSpecies.Create(options.Classes, options.Seed);

    /// <summary>Species names; classes.txt and the image folders use "NNN.Name" (CUB style, NNN = class id).</summary>
    public static string[] ClassNames(SyntheticBirdsOptions options) => Species(options).Select(s => s.Name).ToArray();

    /// <summary>Renders image <paramref name="imageIndex"/> of class <paramref name="classIndex"/> (both 0-based).</summary>
    public static SyntheticBird Render(SyntheticBirdsOptions options, int classIndex, int imageIndex)
        => Render(options, Species(options), classIndex, imageIndex);

    private static SyntheticBird Render(SyntheticBirdsOptions o, BirdSpecies[] species, int c, int j)
    {
        ulong s = o.Seed * 0x9E3779B97F4A7C15UL ^ ((ulong)(uint)c << 32 | (uint)j);
        var rng = new Rng(s ^ 0x5B1D_0000_0000_0000UL);
        var (img, box) = BirdRenderer.Render(species[c], o.Width, o.Height, rng);
        return new SyntheticBird(c, j, img, box, IsTrain(o, j));
    }

    private static bool IsTrain(SyntheticBirdsOptions o, int j) => j < (int)Math.Round(o.ImagesPerClass * o.TrainFraction);

    /// <summary>Every image, class-major (class 0 images 0..n-1, class 1 …), rendered in parallel.</summary>
    public static SyntheticBird[] RenderAll(SyntheticBirdsOptions options)
    {
        options.Validate();
        var species = Species(options);
        int n = options.ImagesPerClass;
        var all = new SyntheticBird[options.Classes * n];
        Parallel.For(0, all.Length, i => all[i] = Render(options, species, i / n, i % n));
        return all;
    }

    /// <summary>The set as an in-memory data set (no files; image ids 1.. in class-major order; class names "NNN.Name" as in classes.txt).</summary>
    public static CubDataset InMemory(SyntheticBirdsOptions options)
    {
        var birds = RenderAll(options);
        var samples = birds.Select((b, i) => new CubSample(i + 1, RelPath(options, b), b.ClassIndex, b.IsTrain, b.Box, b.Image.Width, b.Image.Height) { Image = b.Image }).ToArray();
        return new CubDataset(ClassNames(options).Select((n, c) => Folder(c, n)).ToArray(), samples);
    }

    private static string Folder(int c, string name) => $"{c + 1:000}.{name}";

    private static string RelPath(SyntheticBirdsOptions o, SyntheticBird b)
    {
        var name = Species(o)[b.ClassIndex].Name;
        return $"{Folder(b.ClassIndex, name)}/{name}_{b.ImageIndex + 1:0000}.jpg";
    }

    /// <summary>
    /// Writes the set in the CUB-200-2011 layout under <paramref name="cubRoot"/> (images.txt, image_class_labels.txt,
    /// train_test_split.txt, classes.txt, bounding_boxes.txt, images/NNN.Name/*.jpg) and returns the rendered birds.
    /// </summary>
    public static SyntheticBird[] WriteCub(string cubRoot, SyntheticBirdsOptions options)
    {
        var birds = RenderAll(options);
        var names = ClassNames(options);
        Directory.CreateDirectory(Path.Combine(cubRoot, CubDataset.ImagesDir));
        for (int c = 0; c < names.Length; c++) Directory.CreateDirectory(Path.Combine(cubRoot, CubDataset.ImagesDir, Folder(c, names[c])));
        var encoder = new JpegEncoder { Quality = options.JpegQuality };
        Parallel.For(0, birds.Length, i =>
        {
            var b = birds[i];
            using var img = Image.LoadPixelData<Rgb24>(b.Image.Pixels, b.Image.Width, b.Image.Height);
            img.SaveAsJpeg(Path.Combine(cubRoot, CubDataset.ImagesDir, $"{Folder(b.ClassIndex, names[b.ClassIndex])}/{names[b.ClassIndex]}_{b.ImageIndex + 1:0000}.jpg"), encoder);
        });
        var ci = CultureInfo.InvariantCulture;
        var images = new StringBuilder(); var labels = new StringBuilder(); var split = new StringBuilder(); var boxes = new StringBuilder();
        for (int i = 0; i < birds.Length; i++)
        {
            var b = birds[i]; int id = i + 1;
            images.Append(ci, $"{id} {Folder(b.ClassIndex, names[b.ClassIndex])}/{names[b.ClassIndex]}_{b.ImageIndex + 1:0000}.jpg\n");
            labels.Append(ci, $"{id} {b.ClassIndex + 1}\n");
            split.Append(ci, $"{id} {(b.IsTrain ? 1 : 0)}\n");
            boxes.Append(ci, $"{id} {b.Box.X0:0.0} {b.Box.Y0:0.0} {b.Box.Width:0.0} {b.Box.Height:0.0}\n");
        }
        var classes = new StringBuilder();
        for (int c = 0; c < names.Length; c++) classes.Append(ci, $"{c + 1} {Folder(c, names[c])}\n");
        File.WriteAllText(Path.Combine(cubRoot, CubDataset.ImagesFile), images.ToString());
        File.WriteAllText(Path.Combine(cubRoot, CubDataset.LabelsFile), labels.ToString());
        File.WriteAllText(Path.Combine(cubRoot, CubDataset.SplitFile), split.ToString());
        File.WriteAllText(Path.Combine(cubRoot, CubDataset.BoxesFile), boxes.ToString());
        File.WriteAllText(Path.Combine(cubRoot, CubDataset.ClassesFile), classes.ToString());
        return birds;
    }

    /// <summary>
    /// Returns the CUB_200_2011 folder of the set described by <paramref name="options"/> under
    /// <paramref name="cacheDir"/>, generating it on first use. Generation writes into a temporary folder that is
    /// renamed into place when complete, so an interrupted run never leaves a partial set; concurrent callers
    /// both succeed (the loser of the rename discards its copy).
    /// </summary>
    public static string EnsureGenerated(string cacheDir, SyntheticBirdsOptions options)
    {
        options.Validate();
        string final = Path.Combine(Path.GetFullPath(cacheDir), options.CacheKey);
        string cub = Path.Combine(final, "CUB_200_2011");
        if (Directory.Exists(cub)) return cub;
        Directory.CreateDirectory(cacheDir);
        string tmp = Path.Combine(Path.GetFullPath(cacheDir), $".tmp-{options.CacheKey}-{Guid.NewGuid():N}");
        try
        {
            WriteCub(Path.Combine(tmp, "CUB_200_2011"), options);
            try { Directory.Move(tmp, final); }
            catch (IOException) when (Directory.Exists(cub)) { /* another process finished first */ }
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        }
        return cub;
    }
}
