using System.Collections.Concurrent;
using MtlMoe.Engine;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Model.Data;

/// <summary>
/// Batches a list of <see cref="CubSample"/>s through a transform into engine tensors, on worker threads with a
/// bounded prefetch queue. Order and content are a pure function of (seed, epoch): the epoch's permutation comes
/// from an RNG seeded by (seed, epoch), and each sample's augmentation RNG from (seed, epoch, sample index), so
/// any thread count gives identical batches. Every output image must have the same size (end the transform
/// with a fixed-size crop or resize).
/// </summary>
/// <example><code>
/// using var loader = new CubLoader(ds.Train, CubTransforms.Train(448), new CubBatchOptions { BatchSize = 16, Seed = 7 });
/// for (int epoch = 0; epoch &lt; epochs; epoch++)
///     foreach (var batch in loader.Epoch(epoch)) using (batch) { /* batch.Images [16,3,448,448] … */ }
/// </code></example>
public sealed class CubLoader : IDisposable
{
    private readonly IReadOnlyList<CubSample> _samples;
    private readonly IBoxTransform _transform;
    private readonly ImageLoader _decoder;
    private readonly ConcurrentDictionary<int, RgbImage>? _cache;
    private long _cacheBytes;
    private readonly CancellationTokenSource _disposed = new();

    /// <summary>The settings.</summary>
    public CubBatchOptions Options { get; }

    /// <summary>Number of samples.</summary>
    public int SampleCount => _samples.Count;

    /// <summary>Batches each epoch yields (for progress bars and schedules).</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>A loader over <paramref name="samples"/> (not copied; do not change it while loading).</summary>
    public CubLoader(IReadOnlyList<CubSample> samples, IBoxTransform transform, CubBatchOptions? options = null)
    {
        Options = options ?? new CubBatchOptions();
        if (Options.BatchSize <= 0) throw new ArgumentException($"cub_loader: batch size {Options.BatchSize} must be positive");
        if (Options.Threads < 0 || Options.Prefetch <= 0) throw new ArgumentException($"cub_loader: threads {Options.Threads} must be >= 0 and prefetch {Options.Prefetch} > 0");
        if (samples.Count == 0) throw new ArgumentException("cub_loader: no samples");
        _samples = samples;
        _transform = transform;
        _decoder = new ImageLoader(Options.Limits);
        if (Options.CacheDecoded) _cache = new ConcurrentDictionary<int, RgbImage>();
        BatchesPerEpoch = Options.DropLast ? samples.Count / Options.BatchSize : (samples.Count + Options.BatchSize - 1) / Options.BatchSize;
        if (BatchesPerEpoch == 0) throw new ArgumentException($"cub_loader: {samples.Count} samples make no full batch of {Options.BatchSize} with DropLast");
    }

    /// <summary>The sample order of <paramref name="epoch"/> (indices into the sample list).</summary>
    public int[] EpochOrder(int epoch)
    {
        var order = new int[_samples.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (Options.Shuffle) new Rng(Mix(Options.Seed, (ulong)epoch, ulong.MaxValue)).Shuffle(order.AsSpan());
        return order;
    }

    /// <summary>The augmentation RNG of one sample: a function of (seed, epoch, index) only.</summary>
    public static Rng SampleRng(ulong seed, int epoch, int index) => new(Mix(seed, (ulong)epoch, (ulong)index));

    private static ulong Mix(ulong a, ulong b, ulong c)
    {
        ulong h = a * 0x9E3779B97F4A7C15UL;
        h = (h ^ (h >> 29) ^ b) * 0xBF58476D1CE4E5B9UL;
        h = (h ^ (h >> 31) ^ c) * 0x94D049BB133111EBUL;
        return h ^ (h >> 32);
    }

    /// <summary>
    /// Decodes (or takes from the cache) and transforms sample <paramref name="index"/> for <paramref name="epoch"/>;
    /// the result's box is in output pixels.
    /// </summary>
    public BoxedImage GetTransformed(int index, int epoch)
    {
        var s = _samples[index];
        var img = Decoded(index, s);
        var box = s.Box;
        // CUB boxes are in original pixels; if the decoded size differs from the header's (should not happen), rescale.
        if (s.Width > 0 && (img.Width != s.Width || img.Height != s.Height))
            box = box.Scale((float)img.Width / s.Width, (float)img.Height / s.Height);
        return _transform.Apply(new BoxedImage(img, box), SampleRng(Options.Seed, epoch, index));
    }

    private RgbImage Decoded(int index, CubSample s)
    {
        if (s.Image is not null) return s.Image;
        if (_cache is not null && _cache.TryGetValue(index, out var hit)) return hit;
        var img = _decoder.Load(s.FullPath ?? throw new InvalidOperationException($"cub_loader: sample {s.ImageId} has neither a file nor an image"));
        if (_cache is not null && Interlocked.Add(ref _cacheBytes, img.ByteSize) <= Options.CacheMegabytes << 20) _cache.TryAdd(index, img);
        return img;
    }

    /// <summary>Builds batch <paramref name="b"/> of an epoch whose order is <paramref name="order"/>.</summary>
    private CubBatch BuildBatch(int[] order, int epoch, int b)
    {
        int start = b * Options.BatchSize, count = Math.Min(Options.BatchSize, order.Length - start);
        float[]? pixels = null;
        CpuStorage? storage = null;
        int h = 0, w = 0;
        var labels = new long[count];
        var boxes = new float[count * 4];
        var ids = new int[count];
        for (int r = 0; r < count; r++)
        {
            int idx = order[start + r];
            var t = GetTransformed(idx, epoch);
            if (pixels is null)
            {
                // Written straight into a (pooled) CPU tensor storage: no extra batch-sized copy.
                h = t.Image.Height; w = t.Image.Width;
                storage = CpuStorage.Rent(DType.Float32, checked(count * 3 * h * w));
                pixels = storage.Array<float>();
            }
            else if (t.Image.Width != w || t.Image.Height != h)
                throw new InvalidOperationException($"cub_loader: transform gave {t.Image.Width}x{t.Image.Height} for image {_samples[idx].ImageId} but {w}x{h} for the first row; end the transform with a fixed-size crop");
            ImageNetNorm.ToChw(t.Image, pixels.AsSpan(r * 3 * h * w, 3 * h * w)); // images: [B, 3, H, W]
            var nb = t.Box.Normalized(w, h);
            boxes[4 * r] = nb.X0; boxes[4 * r + 1] = nb.Y0; boxes[4 * r + 2] = nb.X1; boxes[4 * r + 3] = nb.Y1;
            labels[r] = _samples[idx].ClassIndex;
            ids[r] = _samples[idx].ImageId;
        }
        return new CubBatch(Tensor.FromStorage(storage!, [count, 3, h, w]), Tensor.FromArray(labels, [count]),
            Tensor.FromArray(boxes, [count, 4]), ids, b);
    }

    /// <summary>
    /// The batches of <paramref name="epoch"/>, in order. Workers start when enumeration starts and stop when it
    /// ends (also on break or exception). A worker's exception (e.g. a corrupt image) is rethrown here, at the
    /// batch it belongs to. Each batch must be disposed by the caller.
    /// </summary>
    public IEnumerable<CubBatch> Epoch(int epoch)
    {
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        var order = EpochOrder(epoch);
        if (Options.Threads == 0)
        {
            for (int b = 0; b < BatchesPerEpoch; b++) yield return BuildBatch(order, epoch, b);
            yield break;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
        using var window = new SemaphoreSlim(Options.Prefetch);   // permits = batches claimed but not yet consumed
        var ready = new Dictionary<int, (CubBatch? Batch, Exception? Error)>();
        int next = -1;
        void Work()
        {
            try
            {
                while (true)
                {
                    window.Wait(stop.Token);
                    int b = Interlocked.Increment(ref next);
                    if (b >= BatchesPerEpoch) { window.Release(); return; }
                    (CubBatch?, Exception?) result;
                    try { result = (BuildBatch(order, epoch, b), null); }
                    catch (Exception e) { result = (null, e); }
                    lock (ready) { ready[b] = result; Monitor.PulseAll(ready); }
                }
            }
            catch (OperationCanceledException) { }
        }
        int threads = Math.Min(Options.Threads, BatchesPerEpoch);
        var workers = new Thread[threads];
        for (int i = 0; i < threads; i++) { workers[i] = new Thread(Work) { IsBackground = true, Name = $"cub-loader-{i}" }; workers[i].Start(); }
        try
        {
            for (int b = 0; b < BatchesPerEpoch; b++)
            {
                (CubBatch? Batch, Exception? Error) item;
                lock (ready)
                {
                    while (!ready.Remove(b, out item))
                    {
                        stop.Token.ThrowIfCancellationRequested();
                        Monitor.Wait(ready, 100);
                    }
                }
                window.Release();
                // Rethrown as is (a CubFormatException names the bad file) with the worker's stack.
                if (item.Error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(item.Error);
                yield return item.Batch!;
            }
        }
        finally
        {
            stop.Cancel();
            foreach (var t in workers) t.Join();
            lock (ready) foreach (var (_, (batch, _)) in ready) batch?.Dispose();
        }
    }

    /// <summary>Stops any running epoch and drops the cache.</summary>
    public void Dispose()
    {
        if (_disposed.IsCancellationRequested) return;
        _disposed.Cancel();
        _cache?.Clear();
    }
}
