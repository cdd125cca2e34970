using System.Text.Json.Serialization;
using MtlMoe.Engine;
using MtlMoe.Model.IO;

namespace MtlMoe.Model.Training;

/// <summary>How the trainer trains (everything but the model's shape, which is <see cref="Net.ModelConfig"/>).</summary>
public sealed record TrainerOptions
{
    /// <summary>Epochs in total (a resumed run continues up to this).</summary>
    public int Epochs { get; init; } = 12;
    /// <summary>Images per training batch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Peak learning rate.</summary>
    public double Lr { get; init; } = 0.05;
    /// <summary>sgd (momentum 0.9, no Nesterov) or adamw.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;
    /// <summary>Weight decay.</summary>
    public double WeightDecay { get; init; } = 5e-4;
    /// <summary>Linear warm-up length in epochs, then cosine decay to 0 per step.</summary>
    public double WarmupEpochs { get; init; } = 1;
    /// <summary>Cross-entropy label smoothing.</summary>
    public double LabelSmoothing { get; init; } = 0.1;
    /// <summary>Fixed weight λ_loc of the box loss.</summary>
    public double LambdaLoc { get; init; } = 1.0;
    /// <summary>Seed of the data order and augmentation.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Data-loading worker threads (0: load on the training thread).</summary>
    public int Workers { get; init; } = 2;
    /// <summary>Training batches per epoch at most (0: all).</summary>
    public int MaxBatches { get; init; }
    /// <summary>Square crop the model sees.</summary>
    public int Crop { get; init; } = 96;
    /// <summary>Resize of the shorter side before cropping.</summary>
    public int Resize { get; init; } = 110;
    /// <summary>Colour jitter strength of the training augmentation (0: none).</summary>
    public double ColorJitter { get; init; } = 0.4;
    /// <summary>Compute device (written "cpu" or "cuda:N" in config.json).</summary>
    [JsonConverter(typeof(DeviceJsonConverter))]
    public Device Device { get; init; } = Device.Cpu;
    /// <summary>Largest image (width × height) the loaders decode (see <see cref="Data.DecodeLimits.MaxPixels"/>).</summary>
    public long MaxImagePixels { get; init; } = Data.DecodeLimits.Default.MaxPixels;
    /// <summary>Backbone parts frozen, from the input up to and including this one (see <see cref="Backbone.ResNet.Freeze"/>).</summary>
    public Net.FreezeThrough Freeze { get; init; } = Net.FreezeThrough.None;
    /// <summary>The backbone's learning rate as a fraction of <see cref="Lr"/> (a parameter group; heads keep the full rate).</summary>
    public double BackboneLrScale { get; init; } = 1.0;
    /// <summary>Mixed precision of the forward passes (training and the per-epoch evaluation): off or bf16 autocast.</summary>
    public AmpMode Amp { get; init; } = AmpMode.Off;
    /// <summary>Keep decoded images in memory between epochs.</summary>
    public bool CacheDecoded { get; init; } = true;

    /// <summary>The loss settings.</summary>
    public LossOptions Loss => new(LabelSmoothing, LambdaLoc);
}

/// <summary>Thrown when a loss becomes NaN or infinite; the message names the epoch and batch.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
