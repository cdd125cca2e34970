namespace MtlMoe.Model.Data;

/// <summary>How a <see cref="CubLoader"/> builds batches: size, order, worker threads, prefetch and the decoded-image cache.</summary>
public sealed record CubBatchOptions
{
    /// <summary>Rows per batch (default 16).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Reshuffle every epoch (train) or keep the data set order (evaluation).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Drop a last incomplete batch (train) or keep it (evaluation).</summary>
    public bool DropLast { get; init; }

    /// <summary>Seed of the shuffles and of every sample's augmentation.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Worker threads decoding and augmenting; 0 builds batches on the consumer's thread.</summary>
    public int Threads { get; init; } = Math.Max(1, Environment.ProcessorCount - 1);

    /// <summary>Most batches built ahead of the consumer (bounded prefetch; default 4).</summary>
    public int Prefetch { get; init; } = 4;

    /// <summary>Keep decoded images in memory up to <see cref="CacheMegabytes"/> (small sets; default off).</summary>
    public bool CacheDecoded { get; init; }

    /// <summary>Cap of the decoded-image cache in MiB (default 2048).</summary>
    public long CacheMegabytes { get; init; } = 2048;

    /// <summary>Decoding limits (defaults when null).</summary>
    public DecodeLimits? Limits { get; init; }
}
