using MtlMoe.Engine;
using MtlMoe.Model.Data;

namespace MtlMoe.Tests.Data;

public class CubLoaderTests
{
    private static List<(float[] Img, long[] Lab, float[] Box, int[] Ids)> Collect(CubLoader loader, int epoch)
    {
        var list = new List<(float[], long[], float[], int[])>();
        foreach (var b in loader.Epoch(epoch))
            using (b) list.Add((b.Images.ToArray<float>(), b.Labels.ToArray<long>(), b.Boxes.ToArray<float>(), b.ImageIds));
        return list;
    }

    private static CubLoader Make(int threads, bool cache = false, int batch = 5)
        => new(CubDataset.Load(TestSets.MasterRoot).Samples, CubTransforms.Train(48, 56),
            new CubBatchOptions { BatchSize = batch, Seed = 42, Threads = threads, Prefetch = 2, CacheDecoded = cache });

    [Test]
    public void BatchesHaveTheDocumentedShapesAndTypes()
    {
        using var loader = Make(2);
        Assert.That(loader.BatchesPerEpoch, Is.EqualTo(3));   // 12 samples, batches of 5, last one kept
        var ds = CubDataset.Load(TestSets.MasterRoot);
        int n = 0;
        foreach (var b in loader.Epoch(0))
            using (b)
            {
                Assert.That(b.Images.Shape, Is.EqualTo(new[] { b.Count, 3, 48, 48 }));
                Assert.That(b.Images.DType, Is.EqualTo(DType.Float32));
                Assert.That(b.Labels.Shape, Is.EqualTo(new[] { b.Count }));
                Assert.That(b.Labels.DType, Is.EqualTo(DType.Int64));
                Assert.That(b.Boxes.Shape, Is.EqualTo(new[] { b.Count, 4 }));
                Assert.That(b.Boxes.DType, Is.EqualTo(DType.Float32));
                var labels = b.Labels.ToArray<long>();
                var boxes = b.Boxes.ToArray<float>();
                for (int r = 0; r < b.Count; r++)
                {
                    Assert.That(labels[r], Is.EqualTo(ds.Samples[b.ImageIds[r] - 1].ClassIndex));
                    Assert.That(boxes[4 * r], Is.InRange(0f, 1f)); Assert.That(boxes[4 * r + 3], Is.InRange(0f, 1f));
                    Assert.That(boxes[4 * r + 2], Is.GreaterThanOrEqualTo(boxes[4 * r]));
                }
                n += b.Count;
            }
        Assert.That(n, Is.EqualTo(12));
    }

    [Test]
    public void SameSeedGivesIdenticalBatchesWhateverTheThreadCount()
    {
        using var one = Make(1);
        using var three = Make(3);
        using var inline = Make(0, cache: true);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var a = Collect(one, epoch); var b = Collect(three, epoch); var c = Collect(inline, epoch);
            Assert.That(b, Has.Count.EqualTo(a.Count));
            for (int i = 0; i < a.Count; i++)
            {
                Assert.That(b[i].Ids, Is.EqualTo(a[i].Ids)); Assert.That(c[i].Ids, Is.EqualTo(a[i].Ids));
                Assert.That(b[i].Img, Is.EqualTo(a[i].Img)); Assert.That(c[i].Img, Is.EqualTo(a[i].Img));
                Assert.That(b[i].Box, Is.EqualTo(a[i].Box)); Assert.That(b[i].Lab, Is.EqualTo(a[i].Lab));
            }
        }
    }

    [Test]
    public void EpochsReshuffleAndCoverEverySampleOnce()
    {
        using var loader = Make(2);
        var e0 = Collect(loader, 0).SelectMany(b => b.Ids).ToArray();
        var e1 = Collect(loader, 1).SelectMany(b => b.Ids).ToArray();
        Assert.That(e0.Order(), Is.EqualTo(Enumerable.Range(1, 12)));
        Assert.That(e1.Order(), Is.EqualTo(Enumerable.Range(1, 12)));
        Assert.That(e1, Is.Not.EqualTo(e0));
    }

    [Test]
    public void BreakingOutOfAnEpochStopsTheWorkers()
    {
        using var loader = Make(3, batch: 2);
        foreach (var b in loader.Epoch(0)) { b.Dispose(); break; }
        Assert.That(Collect(loader, 0), Has.Count.EqualTo(6)); // the loader is still usable
    }

    [Test]
    public void CorruptImageSurfacesAsAnErrorNamingTheFile()
    {
        var root = TestSets.CopyOfMaster();
        var ds = CubDataset.Load(root);
        var img = TestSets.ImagePath(root, 4);
        var bytes = File.ReadAllBytes(img);
        File.WriteAllBytes(img, bytes[..(bytes.Length * 2 / 3)]);
        using var loader = new CubLoader(ds.Samples, CubTransforms.Test(32, 36), new CubBatchOptions { BatchSize = 4, Threads = 2, Shuffle = false });
        var e = Assert.Throws<CubFormatException>(() => { foreach (var b in loader.Epoch(0)) b.Dispose(); })!;
        Assert.That(e.Message, Does.StartWith(Path.GetFullPath(img) + ": truncated or corrupt image"));
    }

    [Test]
    public void InMemorySyntheticSetLoadsWithoutFiles()
    {
        var ds = SyntheticBirds.InMemory(TestSets.Small with { ImagesPerClass = 2 });
        Assert.That(ds.Samples.All(s => s.FullPath is null && s.Image is not null), Is.True);
        using var loader = new CubLoader(ds.Test, CubTransforms.Test(32, 36), new CubBatchOptions { BatchSize = 8, Threads = 1, Shuffle = false });
        var batches = Collect(loader, 0);
        Assert.That(batches, Has.Count.EqualTo(1));
        Assert.That(batches[0].Ids, Is.EqualTo(ds.Test.Select(s => s.ImageId)));
    }
}
