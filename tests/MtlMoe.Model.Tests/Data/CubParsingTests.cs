using MtlMoe.Model.Data;

namespace MtlMoe.Tests.Data;

public class CubParsingTests
{
    [Test]
    public void GeneratedFolderParsesWithAllImagesClassesSplitsAndBoxes()
    {
        var ds = CubDataset.Load(TestSets.MasterRoot);
        var birds = TestSets.MasterBirds;
        Assert.That(ds.NumClasses, Is.EqualTo(3));
        Assert.That(ds.Samples, Has.Count.EqualTo(12));
        Assert.That(ds.Train, Has.Count.EqualTo(6));
        Assert.That(ds.Test, Has.Count.EqualTo(6));
        Assert.That(ds.SkippedCount, Is.Zero);
        Assert.That(ds.ClassNames, Is.EqualTo(SyntheticBirds.ClassNames(TestSets.Small).Select((n, c) => $"{c + 1:000}.{n}")));
        for (int i = 0; i < 12; i++)
        {
            var s = ds.Samples[i];
            Assert.That(s.ImageId, Is.EqualTo(i + 1));
            Assert.That(s.ClassIndex, Is.EqualTo(birds[i].ClassIndex));
            Assert.That(s.IsTrain, Is.EqualTo(birds[i].IsTrain));
            Assert.That((s.Width, s.Height), Is.EqualTo((64, 64)));
            Assert.That(File.Exists(s.FullPath), Is.True);
            Assert.That(s.Box.X0, Is.EqualTo(birds[i].Box.X0).Within(0.051));
            Assert.That(s.Box.Y1, Is.EqualTo(birds[i].Box.Y1).Within(0.051));
        }
    }

    [Test]
    public void ParentFolderContainingCub200IsAccepted()
    {
        var ds = CubDataset.Load(Path.GetDirectoryName(TestSets.MasterRoot)!);
        Assert.That(ds.Samples, Has.Count.EqualTo(12));
    }

    [Test]
    public void TinyBoxOverhangIsClippedToTheImage()
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "bounding_boxes.txt", 2, "2 -1.5 3 66.5 20");
        var s = CubDataset.Load(root).Samples[1];
        Assert.That(s.Box, Is.EqualTo(new BoxF(0, 3, 64, 23)));
    }

    [Test]
    public void PartsAndAttributesFoldersAreIgnored()
    {
        var root = TestSets.CopyOfMaster();
        Directory.CreateDirectory(Path.Combine(root, "parts"));
        File.WriteAllText(Path.Combine(root, "parts", "part_locs.txt"), "garbage\n");
        Directory.CreateDirectory(Path.Combine(root, "attributes"));
        Assert.That(CubDataset.Load(root).Samples, Has.Count.EqualTo(12));
    }
}
