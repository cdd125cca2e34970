using MtlMoe.Model.Net;
using MtlMoe.Model.Training;

namespace MtlMoe.Train.Cli;

/// <summary>What the user asked for: one command and its options, after presets and defaults.</summary>
public sealed record TrainSettings
{
    /// <summary>train (default), eval, predict or ablate.</summary>
    public CommandKind Command { get; init; } = CommandKind.Train;
    /// <summary>A CUB_200_2011 folder; null: the synthetic birds set, generated once into a cache folder.</summary>
    public string? Data { get; init; }
    /// <summary>auto (a GPU when usable), cpu or cuda[:N].</summary>
    public DeviceRequest Device { get; init; } = DeviceRequest.Auto;
    /// <summary>resnet18, resnet34 or resnet50.</summary>
    public BackboneKind Backbone { get; init; } = BackboneKind.ResNet18;
    /// <summary>Backbone width multiplier (1 = torchvision's network).</summary>
    public double Width { get; init; } = 0.25;
    /// <summary>single, moe, mtl or mtl-moe.</summary>
    public ModelVariant Variant { get; init; } = ModelVariant.MtlMoe;
    /// <summary>Number of experts E (variants with MoE).</summary>
    public int Experts { get; init; } = 4;
    /// <summary>Experts per image k.</summary>
    public int K { get; init; } = 2;
    /// <summary>head (an MLP classifier per expert) or layer4 (each expert owns a copy of the last residual stage).</summary>
    public ExpertDepth ExpertDepth { get; init; } = ExpertDepth.Head;
    /// <summary>Training epochs (70: about 8½ minutes of training and evaluation on a quiet 2-core CPU at the defaults).</summary>
    public int Epochs { get; init; } = 70;
    /// <summary>Images per batch.</summary>
    public int Batch { get; init; } = 32;
    /// <summary>Peak learning rate (0.1 at batch 32: the from-scratch default learns the sibling species' small attributes much sooner than 0.05).</summary>
    public double Lr { get; init; } = 0.1;
    /// <summary>sgd (momentum 0.9) or adamw.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;
    /// <summary>Weight decay.</summary>
    public double WeightDecay { get; init; } = 5e-4;
    /// <summary>Warm-up epochs before the cosine decay.</summary>
    public double WarmupEpochs { get; init; } = 1;
    /// <summary>Training crop size (square); images are resized to about 8/7 of it first.</summary>
    public int Res { get; init; } = 128;
    /// <summary>Resize before cropping (0: derived from Res).</summary>
    public int Resize { get; init; }
    /// <summary>
    /// Colour jitter strength j of the training augmentation (brightness, contrast, saturation each in [1 − j, 1 + j]);
    /// 0 (none) by default: the synthetic set already varies exposure and white balance, and colour is a species cue.
    /// </summary>
    public double Jitter { get; init; }
    /// <summary>Zero-initialise the last batch-norm of every residual block (each block starts as the identity).</summary>
    public bool ZeroInitResidual { get; init; }
    /// <summary>Hidden units of each expert's MLP head.</summary>
    public int Hidden { get; init; } = 256;
    /// <summary>Dropout inside the expert heads.</summary>
    public double Dropout { get; init; } = 0.2;
    /// <summary>Seed of every random choice.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>ablate: seeds per variant (--seed, --seed + 1, …), for mean ± sd and paired differences.</summary>
    public int Seeds { get; init; } = 1;
    /// <summary>CPU threads for compute (0: all cores).</summary>
    public int Threads { get; init; }
    /// <summary>Data-loading worker threads.</summary>
    public int Workers { get; init; } = 2;
    /// <summary>Run folder (default runs/&lt;timestamp&gt;-&lt;variant&gt;).</summary>
    public string? Out { get; init; }
    /// <summary>A run folder to continue from its last checkpoint.</summary>
    public string? Resume { get; init; }
    /// <summary>cub448 or none.</summary>
    public string? Preset { get; init; }
    /// <summary>Label smoothing ε for the cross-entropy.</summary>
    public double LabelSmoothing { get; init; } = 0.1;
    /// <summary>λ_loc, the weight of the box loss (fixed weighting).</summary>
    public double LambdaLoc { get; init; } = 1.0;
    /// <summary>Learned uncertainty weighting of the task losses instead of a fixed λ.</summary>
    public bool LearnedWeighting { get; init; }
    /// <summary>
    /// Backbone weights: "imagenet" (resnet18-cntk, width 1), or a file with torchvision names (.safetensors, .pth, or a
    /// checkpoint of this program). A train or ablate run that names no network starts from "imagenet" with its recipe;
    /// the backbone, width, lr, epoch and resolution defaults here are the from-scratch ones (see <see cref="PretrainedChoice"/>).
    /// </summary>
    public string? Pretrained { get; init; }
    /// <summary>Backbone parts frozen from the input up to and including this one: none, stem, layer1 … layer4.</summary>
    public FreezeThrough Freeze { get; init; } = FreezeThrough.None;
    /// <summary>The backbone's learning rate as a fraction of --lr (the heads keep --lr).</summary>
    public double BackboneLr { get; init; } = 1.0;
    /// <summary>A checkpoint of a single-expert run whose head starts every expert.</summary>
    public string? InitExpertsFrom { get; init; }
    /// <summary>Checkpoint for eval/predict.</summary>
    public string? Checkpoint { get; init; }
    /// <summary>Images or folders for predict.</summary>
    public IReadOnlyList<string> Inputs { get; init; } = [];
    /// <summary>predict: one JSON object per image on stdout instead of text.</summary>
    public bool Json { get; init; }
    /// <summary>Where predict writes annotated PNGs (none when null).</summary>
    public string? Annotate { get; init; }
    /// <summary>Synthetic set: classes.</summary>
    public int SyntheticClasses { get; init; } = 20;
    /// <summary>Synthetic set: images per class (three quarters train, one quarter test).</summary>
    public int SyntheticImagesPerClass { get; init; } = 120;
    /// <summary>Synthetic set: image size in pixels.</summary>
    public int SyntheticSize { get; init; } = 160;
    /// <summary>Largest image (width × height) decoded; a header above it is refused before decoding.</summary>
    public long MaxImagePixels { get; init; } = MtlMoe.Model.Data.DecodeLimits.Default.MaxPixels;
    /// <summary>Drop bad CUB images (counted) instead of stopping.</summary>
    public bool SkipBad { get; init; }
    /// <summary>Limit on training batches per epoch (0: all) — for smoke tests.</summary>
    public int MaxBatches { get; init; }
    /// <summary>On a GPU, let matrix products and convolutions use TF32 tensor cores (about 1e-3 relative error, several times faster); ignored on the CPU.</summary>
    public bool Tf32 { get; init; }
    /// <summary>Mixed precision: off, or bf16 autocast (master weights and optimizer state stay float32); kept on --resume.</summary>
    public AmpMode Amp { get; init; } = AmpMode.Off;
    /// <summary>Plain progress lines even on a terminal.</summary>
    public bool Plain { get; init; }
    /// <summary>The options given on the command line (names without "--"), as opposed to defaults and preset values.</summary>
    [System.Text.Json.Serialization.JsonIgnore] public IReadOnlyList<string> Given { get; init; } = [];
    /// <summary>Print the stack trace under an error message (also MTLMOE_DEBUG=1).</summary>
    [System.Text.Json.Serialization.JsonIgnore] public bool Debug { get; init; }
}
