using System.Diagnostics;
using MtlMoe.Model.Data;

namespace MtlMoe.Bench.Workloads;

/// <summary>
/// Input-pipeline throughput: a synthetic birds set written as CUB-layout JPEGs (500×375, like typical CUB
/// photos) into a cache folder, then decoded and augmented through the CUB train recipe into [B, 3, res, res]
/// batches. Options: --threads (2), --res (448), --batch (16), --epochs (2), --images (160), --cache (.cache),
/// --grid PATH (also write a PNG grid of synthetic birds with their boxes).
/// </summary>
public sealed class LoaderBench : IWorkload
{
    public string Name => "loader";
    public string Description => "CUB loader images/s through the train pipeline (--threads, --res, --batch, --grid PATH)";

    public void Run(BenchOptions options, JsonLines output)
    {
        int threads = options.Int("threads", 2), res = options.Int("res", 448), batch = options.Int("batch", 16);
        int epochs = options.Int("epochs", 2), images = options.Int("images", 160);
        string cache = options.Str("cache", Path.Combine(".cache", "bench"));
        string grid = options.Str("grid", "");
        var synth = new SyntheticBirdsOptions { Classes = 8, ImagesPerClass = Math.Max(1, images / 8), Width = 500, Height = 375, TrainFraction = 1.0, Seed = 7 };
        var sw = Stopwatch.StartNew();
        string root = SyntheticBirds.EnsureGenerated(cache, synth);
        Console.Error.WriteLine($"synthetic set ready at {root} in {sw.Elapsed.TotalSeconds:0.0} s");
        var ds = CubDataset.Load(root);

        if (grid != "")
        {
            var small = new SyntheticBirdsOptions { Classes = 20, ImagesPerClass = 2, Width = 192, Height = 192, Seed = 2011 };
            var birds = Enumerable.Range(0, 20).Select(c => SyntheticBirds.Render(small, c, 0)).Select(b => new BoxedImage(b.Image, b.Box)).ToList();
            BoxDrawing.SaveGrid(grid, birds, columns: 5);
            // The same birds after the train recipe (crop, flip, jitter), boxes carried along.
            var aug = CubTransforms.Train(160, 184);
            var augmented = birds.Select((b, i) => aug.Apply(b, CubLoader.SampleRng(3, 0, i))).ToList();
            string augPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(grid))!, Path.GetFileNameWithoutExtension(grid) + "_train_aug.png");
            BoxDrawing.SaveGrid(augPath, augmented, columns: 5);
            Console.Error.WriteLine($"wrote {grid} and {augPath}");
        }

        if (options.Flag("stages")) Stages(ds.Train[0].FullPath!, res, output);

        using var loader = new CubLoader(ds.Train, CubTransforms.Train(res, CubTransforms.ResizeFor(res)),
            new CubBatchOptions { BatchSize = batch, Threads = threads, Seed = 1, DropLast = true });
        // Warm-up epoch (JIT, page cache), then timed epochs.
        foreach (var b in loader.Epoch(0)) b.Dispose();
        int n = 0;
        sw.Restart();
        for (int e = 1; e <= epochs; e++)
            foreach (var b in loader.Epoch(e)) { n += b.Count; b.Dispose(); }
        double s = sw.Elapsed.TotalSeconds;
        output.Write(new Dictionary<string, object?>
        {
            ["workload"] = "loader", ["res"] = res, ["threads"] = threads, ["batch"] = batch, ["images"] = n,
            ["source"] = "synthetic 500x375 jpeg", ["images_per_s"] = Timing.R(n / s, 1),
        });
    }

    // Per-stage cost of one image on one thread (--stages).
    private static void Stages(string path, int res, JsonLines output)
    {
        var bytes = File.ReadAllBytes(path);
        var img = ImageLoader.Default.Decode(bytes, path);
        var resized = ImageOps.Resize(img, CubTransforms.ResizeFor(res) * img.Width / img.Height, CubTransforms.ResizeFor(res));
        var crop = ImageOps.Crop(resized, 10, 10, res, res);
        var dst = new float[3 * res * res];
        output.Write(new Dictionary<string, object?>
        {
            ["workload"] = "loader_stages", ["res"] = res,
            ["decode_ms"] = Timing.R(Timing.MedianMs(() => ImageLoader.Default.Decode(bytes, path))),
            ["resize_ms"] = Timing.R(Timing.MedianMs(() => ImageOps.Resize(img, resized.Width, resized.Height))),
            ["crop_ms"] = Timing.R(Timing.MedianMs(() => ImageOps.Crop(resized, 10, 10, res, res))),
            ["flip_ms"] = Timing.R(Timing.MedianMs(() => ImageOps.FlipX(crop))),
            ["jitter_ms"] = Timing.R(Timing.MedianMs(() => ImageOps.AdjustColor(crop, 1.1f, 0.9f, 1.2f))),
            ["normalize_ms"] = Timing.R(Timing.MedianMs(() => ImageNetNorm.ToChw(crop, dst))),
        });
    }
}
