using MtlMoe.Model.Data;

namespace MtlMoe.Tests.Data;

public class SyntheticBirdsTests
{
    [Test]
    public void RenderingIsDeterministicFromTheSeed()
    {
        var a = SyntheticBirds.Render(TestSets.Small, 1, 2);
        var b = SyntheticBirds.Render(TestSets.Small, 1, 2);
        var c = SyntheticBirds.Render(TestSets.Small with { Seed = 12 }, 1, 2);
        Assert.That(b.Image.Pixels, Is.EqualTo(a.Image.Pixels));
        Assert.That(b.Box, Is.EqualTo(a.Box));
        Assert.That(c.Image.Pixels, Is.Not.EqualTo(a.Image.Pixels));
    }

    [Test]
    public void DefaultSetHasTwentyDistinctSpeciesDifferingSubtlyFromASibling()
    {
        var species = SyntheticBirds.Species(new SyntheticBirdsOptions());
        Assert.That(species, Has.Length.EqualTo(20));
        Assert.That(species.Distinct().Count(), Is.EqualTo(20));
        Assert.That(species.Select(s => s.Name).Distinct().Count(), Is.EqualTo(20));
        for (int k = 0; k < 20; k++)
        {
            if (k % 5 == 0) continue;
            // Some earlier sibling of the same family differs in at most two attributes.
            int best = Enumerable.Range(k - k % 5, k % 5).Min(j => Differences(species[j], species[k]));
            Assert.That(best, Is.InRange(1, 2), $"species {k}");
            Assert.That(species[k].Family, Is.EqualTo(species[k - k % 5].Family));
        }
    }

    private static int Differences(BirdSpecies a, BirdSpecies b)
        => (a.WingBar != b.WingBar ? 1 : 0) + (a.BeakLength != b.BeakLength ? 1 : 0) + (a.Crown != b.Crown ? 1 : 0)
         + (a.EyeRing != b.EyeRing ? 1 : 0) + (a.Breast != b.Breast ? 1 : 0) + (a.Tail != b.Tail ? 1 : 0);

    [Test]
    public void BoxIsTheExtentOfTheBirdAndImagesVaryWithinAClass()
    {
        var o = TestSets.Small with { Width = 96, Height = 80, ImagesPerClass = 6 };
        var birds = SyntheticBirds.RenderAll(o);
        foreach (var b in birds)
        {
            Assert.That((b.Image.Width, b.Image.Height), Is.EqualTo((96, 80)));
            Assert.That(b.Box.X0, Is.GreaterThanOrEqualTo(0)); Assert.That(b.Box.X1, Is.LessThanOrEqualTo(96));
            Assert.That(b.Box.Y0, Is.GreaterThanOrEqualTo(0)); Assert.That(b.Box.Y1, Is.LessThanOrEqualTo(80));
            Assert.That(b.Box.Width, Is.GreaterThan(96 * 0.15)); Assert.That(b.Box.Height, Is.GreaterThan(80 * 0.1));
            Assert.That(b.Box.Area, Is.LessThan(96 * 80 * 0.9));
        }
        // Within a class the box moves and resizes (pose/scale/position vary).
        var cls0 = birds.Where(b => b.ClassIndex == 0).Select(b => b.Box).ToArray();
        Assert.That(cls0.Select(b => (int)b.X0).Distinct().Count(), Is.GreaterThan(2));
        Assert.That(cls0.Select(b => (int)b.Width).Distinct().Count(), Is.GreaterThan(2));
    }

    [Test]
    public void EnsureGeneratedWritesOnceAndReuses()
    {
        var cache = TestSets.NewTempDir();
        var o = TestSets.Small with { ImagesPerClass = 2, Width = 32, Height = 32 };
        var root = SyntheticBirds.EnsureGenerated(cache, o);
        Assert.That(CubDataset.Load(root).Samples, Has.Count.EqualTo(6));
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(root, "images.txt"));
        File.WriteAllText(Path.Combine(root, "marker"), "x");
        Assert.That(SyntheticBirds.EnsureGenerated(cache, o), Is.EqualTo(root));
        Assert.That(File.Exists(Path.Combine(root, "marker")), Is.True, "regenerated instead of reused");
        Assert.That(File.GetLastWriteTimeUtc(Path.Combine(root, "images.txt")), Is.EqualTo(stamp));
        Assert.That(Directory.GetDirectories(cache), Has.Length.EqualTo(1), "no temporary folder left behind");
    }

    [Test]
    public void GridPictureIsWritten()
    {
        var path = Path.Combine(TestSets.NewTempDir(), "grid.png");
        var items = Enumerable.Range(0, 3).Select(c => SyntheticBirds.Render(TestSets.Small, c, 0)).Select(b => new BoxedImage(b.Image, b.Box)).ToList();
        BoxDrawing.SaveGrid(path, items, columns: 2);
        var img = ImageLoader.Default.Load(path);
        Assert.That((img.Width, img.Height), Is.EqualTo((2 * 64 + 3 * 4, 2 * 64 + 3 * 4)));
        // The top-left corner of the first box is drawn in red.
        var b0 = items[0].Box;
        int p = ((4 + (int)MathF.Round(b0.Y0)) * img.Width + 4 + (int)MathF.Round(b0.X0)) * 3;
        Assert.That((img.Pixels[p], img.Pixels[p + 1], img.Pixels[p + 2]), Is.EqualTo(((byte)255, (byte)40, (byte)40)));
    }
}
