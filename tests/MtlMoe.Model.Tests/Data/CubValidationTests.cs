using MtlMoe.Model.Data;

namespace MtlMoe.Tests.Data;

/// <summary>Every documented validation error, with the message naming file and line.</summary>
public class CubValidationTests
{
    private static CubFormatException Fails(string root)
        => Assert.Throws<CubFormatException>(() => CubDataset.Load(root))!;

    [Test]
    public void MissingMetadataFile()
    {
        var root = TestSets.CopyOfMaster();
        File.Delete(Path.Combine(root, "bounding_boxes.txt"));
        var e = Fails(root);
        Assert.That(e.Message, Does.EndWith("bounding_boxes.txt: required file is missing"));
    }

    [Test]
    public void WrongFieldCount()
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "bounding_boxes.txt", 3, "3 1 2 30");
        var e = Fails(root);
        Assert.That(e.Message, Is.EqualTo("bounding_boxes.txt:3: expected 5 fields (<image_id> <x> <y> <width> <height>), got 4"));
        Assert.That((e.File, e.Line, e.ImageId), Is.EqualTo(("bounding_boxes.txt", 3, 3)));
    }

    [Test]
    public void NonNumericField()
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "bounding_boxes.txt", 4, "4 1 two 30 30");
        Assert.That(Fails(root).Message, Is.EqualTo("bounding_boxes.txt:4: 'two' is not a number"));
    }

    [Test]
    public void UnknownImageId()
    {
        var root = TestSets.CopyOfMaster();
        File.AppendAllText(Path.Combine(root, "train_test_split.txt"), "99 1\n");
        Assert.That(Fails(root).Message, Is.EqualTo("train_test_split.txt:13: unknown image id 99 (not in images.txt)"));
    }

    [Test]
    public void ImageIdMissingFromAFile()
    {
        var root = TestSets.CopyOfMaster();
        var path = Path.Combine(root, "image_class_labels.txt");
        File.WriteAllLines(path, File.ReadAllLines(path).Where(l => !l.StartsWith("6 ", StringComparison.Ordinal)));
        Assert.That(Fails(root).Message, Is.EqualTo("image_class_labels.txt: image id 6 (images.txt line 6) has no line"));
    }

    [Test]
    public void DuplicateImageId()
    {
        var root = TestSets.CopyOfMaster();
        File.AppendAllText(Path.Combine(root, "image_class_labels.txt"), "4 2\n");
        Assert.That(Fails(root).Message, Is.EqualTo("image_class_labels.txt:13: duplicate image id 4 (first on line 4)"));
    }

    [Test]
    public void ClassOutOfRange()
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "image_class_labels.txt", 2, "2 7");
        Assert.That(Fails(root).Message, Is.EqualTo("image_class_labels.txt:2: class id 7 out of range 1..3 (classes.txt)"));
    }

    [Test]
    public void BadSplitFlag()
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "train_test_split.txt", 5, "5 2");
        Assert.That(Fails(root).Message, Is.EqualTo("train_test_split.txt:5: split flag '2' must be 1 (train) or 0 (test)"));
    }

    [Test]
    public void ZeroAreaBox()
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "bounding_boxes.txt", 3, "3 10 10 0 20");
        Assert.That(Fails(root).Message, Is.EqualTo("bounding_boxes.txt:3: box of image 3 has no area (w=0, h=20)"));
    }

    [Test]
    public void BoxOutsideTheImage()
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "bounding_boxes.txt", 3, "3 40 10 40 20");
        Assert.That(Fails(root).Message, Is.EqualTo("bounding_boxes.txt:3: box of image 3 (40, 10, 80, 30) lies outside the 64x64 image by more than 2 px"));
    }

    [Test]
    public void MissingImageFile()
    {
        var root = TestSets.CopyOfMaster();
        var img = TestSets.ImagePath(root, 5);
        File.Delete(img);
        var rel = Path.GetRelativePath(root, img).Replace('\\', '/');
        Assert.That(Fails(root).Message, Is.EqualTo($"images.txt:5: image file '{rel}' does not exist"));
    }

    [Test]
    public void BadClassesFileStopsEvenWithSkipBad()
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "classes.txt", 2, "9 009.Nope");
        var e = Assert.Throws<CubFormatException>(() => CubDataset.Load(root, new CubValidationOptions { SkipBad = true }))!;
        Assert.That(e.Message, Does.StartWith("classes.txt:2: class id '9' must be an integer in 1..3"));
    }

    [Test]
    public void TruncatedJpegIsNamedDuringDecode()
    {
        var root = TestSets.CopyOfMaster();
        var img = TestSets.ImagePath(root, 7);
        var bytes = File.ReadAllBytes(img);
        File.WriteAllBytes(img, bytes[..(bytes.Length / 2)]);
        // Headers are intact, so validation (header-only) passes; full decoding names the file.
        var ds = CubDataset.Load(root);
        var e = Assert.Throws<CubFormatException>(() => ImageLoader.Default.Load(ds.Samples[6].FullPath!))!;
        Assert.That(e.Message, Does.StartWith(Path.GetFullPath(img) + ": truncated or corrupt image"));
        var e2 = Assert.Throws<CubFormatException>(() => CubDataset.Load(root, new CubValidationOptions { DecodeAll = true }))!;
        Assert.That(e2.Message, Does.StartWith(Path.GetFullPath(img) + ": truncated or corrupt image"));
    }

    [Test]
    public void NonImageFile()
    {
        var root = TestSets.CopyOfMaster();
        var img = TestSets.ImagePath(root, 8);
        File.WriteAllText(img, "this is not a JPEG, just text pretending to be one\n");
        var e = Fails(root);
        Assert.That(e.Message, Does.StartWith(Path.GetFullPath(img) + ": not a recognised image format"));
        Assert.That(e.ImageId, Is.EqualTo(8));
    }

    [Test]
    public void HugeDimensionHeader()
    {
        var root = TestSets.CopyOfMaster();
        var img = TestSets.ImagePath(root, 9);
        File.WriteAllBytes(img, CraftedImages.PngHeader(100_000, 100_000));
        var e = Fails(root);
        Assert.That(e.Message, Is.EqualTo(Path.GetFullPath(img) + ": image header claims 100000x100000 = 10000000000 pixels, over the limit of 40000000"));
    }

    [Test]
    public void SkipBadDropsAndCountsBadImages()
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "bounding_boxes.txt", 3, "3 10 10 0 20");        // zero area
        TestSets.ReplaceLine(root, "image_class_labels.txt", 2, "2 7");             // class out of range
        File.Delete(TestSets.ImagePath(root, 5));                                   // missing file
        File.WriteAllText(TestSets.ImagePath(root, 8), "not an image");             // not an image
        File.AppendAllText(Path.Combine(root, "train_test_split.txt"), "99 1\n");   // unknown id (a line, no image)
        var ds = CubDataset.Load(root, new CubValidationOptions { SkipBad = true });
        Assert.That(ds.Samples.Select(s => s.ImageId), Is.EqualTo(new[] { 1, 4, 6, 7, 9, 10, 11, 12 }));
        Assert.That(ds.SkippedCount, Is.EqualTo(5));
        Assert.That(ds.SkipReasons, Has.Some.StartsWith(Path.Combine(root, "bounding_boxes.txt") + ":3:"));
        Assert.That(ds.SkipReasons, Has.Some.StartsWith(Path.Combine(root, "train_test_split.txt") + ":13:"));
    }

    [TestCase("../../../etc/hostname"), TestCase("/etc/hostname"), TestCase("001.x/../../images.txt")]
    public void PathsThatLeaveTheImagesFolderAreRefused(string path)
    {
        var root = TestSets.CopyOfMaster();
        TestSets.ReplaceLine(root, "images.txt", 3, "3 " + path);
        var e = Fails(root);
        Assert.That(e.Message, Is.EqualTo($"images.txt:3: path '{path}' leaves the images/ folder (paths are relative to images/ and stay inside it)"));
        Assert.That(e.ImageId, Is.EqualTo(3), "--skip-bad can drop it");
    }

    [Test]
    public void ASmallJpegClaimingAHugeSizeIsRefusedBeforeDecoding()
    {
        var root = TestSets.CopyOfMaster();
        var img = TestSets.ImagePath(root, 2);
        var bytes = CraftedImages.JpegClaiming(File.ReadAllBytes(img), 6000, 6000);
        Assert.That(bytes.Length, Is.LessThan(10_000));
        File.WriteAllBytes(img, bytes);
        var e = Fails(root);
        Assert.That(e.Message, Is.EqualTo($"{Path.GetFullPath(img)}: the file has {bytes.Length} bytes, fewer than the 70312 any complete JPEG of 6000x6000 pixels needs: truncated or crafted (not decoded)"));
        // Decoding it directly is refused the same way, before any pixel buffer exists.
        var e2 = Assert.Throws<CubFormatException>(() => ImageLoader.Default.Load(img))!;
        Assert.That(e2.What, Does.StartWith($"the file has {bytes.Length} bytes"));
    }

    [Test]
    public void ThePixelLimitIsAnOption()
    {
        var root = TestSets.CopyOfMaster();
        var e = Assert.Throws<CubFormatException>(() => CubDataset.Load(root, new CubValidationOptions { Limits = new DecodeLimits { MaxPixels = 4000, LimitHint = "; raise it" } }))!;
        Assert.That(e.What, Is.EqualTo("image header claims 64x64 = 4096 pixels, over the limit of 4000; raise it"));
        Assert.That(CubDataset.Load(root, new CubValidationOptions { Limits = new DecodeLimits { MaxPixels = 4096 } }).Samples, Has.Count.EqualTo(12));
    }
}
