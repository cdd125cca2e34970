using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using MtlMoe.Engine;
using MtlMoe.Engine.IO;
using MtlMoe.Model.IO;
using MtlMoe.Model.Net;

namespace MtlMoe.Model.Training;

/// <summary>The files of a run folder and how they are written (always atomically: temp file + rename).</summary>
public static class RunFiles
{
    /// <summary>Run configuration (model, training, data).</summary>
    public const string Config = "config.json";
    /// <summary>One row per epoch.</summary>
    public const string Metrics = "metrics.csv";
    /// <summary>Model after the last finished epoch (a copy of the committed set's, see <see cref="RunCheckpoints"/>).</summary>
    public const string Last = "last.safetensors";
    /// <summary>Model of the epoch with the best test top-1 (a copy of the committed set's).</summary>
    public const string Best = "best.safetensors";
    /// <summary>Files skipped under --skip-bad, one line each.</summary>
    public const string Skipped = "skipped.txt";

    /// <summary>JSON settings used for every run file (NaN allowed for metrics without a box head).</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Writes the model's state with its config, class names and epoch as metadata.</summary>
    public static void SaveModel(string path, MtlMoeNet net, IReadOnlyList<string> classNames, int epoch)
    {
        var meta = new Dictionary<string, string>
        {
            ["format"] = "mtl-moe-checkpoint/1",
            ["config"] = net.Config.ToJson(),
            ["classes"] = JsonSerializer.Serialize(classNames),
            ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture),
        };
        Safetensors.Save(path, net.StateDict(), meta);
    }

    /// <summary>A checkpoint's metadata: config, class names and epoch. A bad file is a <see cref="FileProblemException"/>.</summary>
    public static (ModelConfig Config, string[] Classes, int Epoch) ReadModelMetadata(string path)
    {
        var (tensors, meta) = ReadTensors(path);
        foreach (var t in tensors.Values) t.Dispose();
        return ParseMetadata(path, meta);
    }

    /// <summary>Every tensor and the metadata of a safetensors file; a missing or malformed file is a <see cref="FileProblemException"/> naming it.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) ReadTensors(string path)
        => FileErrors.About(path, () => DisposeScope.Outside(() => (Safetensors.Load(path, out var m), m)));

    private static (ModelConfig, string[], int) ParseMetadata(string path, IReadOnlyDictionary<string, string> meta)
    {
        if (!meta.TryGetValue("config", out var cfg))
            throw new FileProblemException(path, 0, "not an MTL-MOE checkpoint (no 'config' metadata; a backbone from elsewhere goes to --pretrained)");
        try
        {
            var classes = meta.TryGetValue("classes", out var c) ? JsonSerializer.Deserialize<string[]>(c) ?? [] : [];
            int epoch = meta.TryGetValue("epoch", out var e) ? int.Parse(e, CultureInfo.InvariantCulture) : 0;
            return (ModelConfig.FromJson(cfg), classes, epoch);
        }
        catch (Exception e) when (e is ArgumentException or JsonException or FormatException or OverflowException)
        {
            throw new FileProblemException(path, 0, $"the checkpoint's metadata is damaged ({e.Message})", e);
        }
    }

    /// <summary>Builds the network a checkpoint describes and loads its weights (strictly) onto <paramref name="device"/>.</summary>
    public static (MtlMoeNet Net, string[] Classes, int Epoch) LoadModel(string path, Device? device = null)
    {
        var (tensors, meta) = ReadTensors(path);
        try
        {
            var (config, classes, epoch) = ParseMetadata(path, meta);
            var net = new MtlMoeNet(config);
            LoadWeights(path, net, tensors);
            if (device is Device d) net.To(d);
            return (net, classes, epoch);
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    /// <summary>Loads <paramref name="tensors"/> (read from <paramref name="path"/>) into <paramref name="net"/> strictly; a mismatch names the file.</summary>
    public static void LoadWeights(string path, MtlMoeNet net, IReadOnlyDictionary<string, Tensor> tensors)
    {
        try { net.LoadStateDict(tensors, strict: true); }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            throw new FileProblemException(path, 0, $"the weights do not fit the model its metadata describes ({e.Message})", e);
        }
    }

    /// <summary>metrics.csv: one row per epoch, with one load column per expert.</summary>
    public static void WriteMetricsCsv(string path, IReadOnlyList<EpochMetrics> history, IFileOps? fs = null)
    {
        var sb = new StringBuilder();
        int experts = history.Count > 0 ? history[0].ExpertLoad.Length : 0;
        sb.Append("epoch,train_loss,train_class_loss,train_box_loss,train_aux_loss,train_top1,test_loss,test_top1,test_top5,test_mean_iou,test_iou50,lr,seconds,images_per_second");
        for (int e = 0; e < experts; e++) sb.Append(CultureInfo.InvariantCulture, $",load_expert{e}");
        sb.Append('\n');
        foreach (var m in history)
        {
            sb.Append(string.Join(",", new[] { m.Epoch.ToString(CultureInfo.InvariantCulture) }.Concat(
                new[] { m.TrainLoss, m.TrainClassLoss, m.TrainBoxLoss, m.TrainAuxLoss, m.TrainTop1, m.TestLoss, m.TestTop1, m.TestTop5, m.TestMeanIoU, m.TestIoU50, m.LearningRate, m.Seconds, m.ImagesPerSecond }
                    .Concat(m.ExpertLoad).Select(v => v.ToString("R", CultureInfo.InvariantCulture)))));
            sb.Append('\n');
        }
        AtomicFile.WriteAllText(fs ?? DiskFileOps.Instance, path, sb.ToString());
    }
}

/// <summary>What trainer_state.json holds: enough, with the set's model and optimizer state, to continue bit for bit.</summary>
public sealed record TrainerState
{
    /// <summary>Epochs finished (1-based count).</summary>
    public int Epoch { get; init; }
    /// <summary>Optimizer steps taken.</summary>
    public long GlobalStep { get; init; }
    /// <summary>Best test top-1 so far.</summary>
    public double BestTop1 { get; init; } = -1;
    /// <summary>Epoch of <see cref="BestTop1"/>.</summary>
    public int BestEpoch { get; init; }
    /// <summary>Optimizer name (sgd, adamw).</summary>
    public string Optimizer { get; init; } = "";
    /// <summary>Every generator's <see cref="Rng.GetState"/>, by name ("default" is <see cref="Rng.Default"/>).</summary>
    public Dictionary<string, ulong[]> Rngs { get; init; } = new();
    /// <summary>Metrics of every finished epoch.</summary>
    public List<EpochMetrics> History { get; init; } = new();
}
