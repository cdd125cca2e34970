using MtlMoe.Engine;
using MtlMoe.Engine.MoE;
using MtlMoe.Engine.NN;
using MtlMoe.Model.Backbone;
using MtlMoe.Model.Heads;

namespace MtlMoe.Model.Net;

/// <summary>What one forward pass of <see cref="MtlMoeNet"/> produced.</summary>
/// <param name="Logits">[B, classes].</param>
/// <param name="Boxes">[B, 4] normalised (x0, y0, x1, y1), or null without a box head.</param>
/// <param name="AuxLoss">The MoE load-balancing loss (scalar), or null without MoE.</param>
/// <param name="ExpertIndices">[B·k] row-major: row b's experts are [b·k, b·k + k).</param>
/// <param name="Gates">[B·k] gates aligned with <paramref name="ExpertIndices"/>.</param>
/// <param name="K">Experts per row.</param>
/// <param name="RoutedRows">Rows routed to each expert in this batch.</param>
public sealed record NetOutput(Tensor Logits, Tensor? Boxes, Tensor? AuxLoss, int[] ExpertIndices, double[] Gates, int K, int[] RoutedRows);

/// <summary>
/// The MTL-MOE network: a ResNet backbone (child "backbone", torchvision names inside), the classifier — one
/// expert (child "head") or a sparsely-gated mixture of E experts choosing k per image (child "moe", names
/// moe.gate.w_gate, moe.experts.i.…) — and, for mtl variants, a localization head (child "loc") on the final
/// feature map. Learned task weighting adds child "task_weights".
/// </summary>
public sealed class MtlMoeNet : Module
{
    private readonly Module? _head;

    /// <summary>The configuration it was built from.</summary>
    public ModelConfig Config { get; }
    /// <summary>The backbone (no fc).</summary>
    public ResNet Backbone { get; }
    /// <summary>The mixture of experts (moe, mtl-moe), else null.</summary>
    public MoeLayer? Moe { get; }
    /// <summary>The localization head (mtl, mtl-moe), else null.</summary>
    public LocalizationHead? Loc { get; }
    /// <summary>Learned uncertainty weights, when configured.</summary>
    public TaskWeights? TaskWeights { get; }
    /// <summary>Draws every dropout mask of the experts.</summary>
    public Rng DropoutRng { get; }
    /// <summary>Draws the MoE gating noise.</summary>
    public Rng NoiseRng { get; }

    /// <summary>Every generator whose state a checkpoint must keep, by name.</summary>
    public IReadOnlyDictionary<string, Rng> Rngs => new Dictionary<string, Rng> { ["dropout"] = DropoutRng, ["moe_noise"] = NoiseRng };

    /// <summary>The experts, in order (one for variants without MoE).</summary>
    public IReadOnlyList<Module> ExpertModules => Moe is null ? [_head!] : Enumerable.Range(0, Moe.Experts.Count).Select(i => Moe.Experts[i]).ToList();

    /// <summary>Builds the network; every initial weight and random stream derives from <paramref name="seed"/>.</summary>
    public MtlMoeNet(ModelConfig config, ulong seed = 1)
    {
        config.Validate();
        Config = config;
        var init = new Rng(seed);
        DropoutRng = new Rng(seed ^ 0xD20B_0D20B_0D20BUL);
        NoiseRng = new Rng(seed ^ 0x0015_E0015_E0015UL);
        Backbone = RegisterModule("backbone", new ResNet(config.Depth, null, config.Width, init));
        if (config.ZeroInitResidual) ZeroLastNorms(Backbone, config.Depth);
        int f = Backbone.FeatureChannels;

        int inputDim;
        Func<int, Module> expert;
        if (config.ExpertDepth == ExpertDepth.Layer4)
        {
            int c3 = Math.Max(4, (int)Math.Round(256 * config.Width)) * (ResNet.UsesBottleneck(config.Depth) ? Bottleneck.Expansion : BasicBlock.Expansion);
            int h3 = Layer3MapSize(config.Resolution);
            inputDim = c3 * h3 * h3;
            expert = _ => new Layer4Expert(config.Depth, config.Width, c3, h3, config.Classes, config.Dropout, init, DropoutRng);
        }
        else
        {
            inputDim = f;
            expert = _ => new MlpExpert(f, config.Hidden, config.Classes, config.Dropout, init, DropoutRng);
        }
        if (config.HasMoe)
            Moe = RegisterModule("moe", new MoeLayer(inputDim, new MoeOptions { NumExperts = config.Experts, K = config.K }, expert, NoiseRng));
        else
            _head = RegisterModule("head", expert(0));
        if (config.HasBox)
            Loc = RegisterModule("loc", new LocalizationHead(f, config.FeatureMapSize, config.FeatureMapSize, rng: init));
        if (config.LearnedWeighting)
            TaskWeights = RegisterModule("task_weights", new TaskWeights());
        if (config.ExpertDepth == ExpertDepth.Layer4) CopyBackboneLayer4IntoExperts();
    }

    // γ of each block's last batch-norm (layerS.B.bn2 in basic blocks, bn3 in bottlenecks) to 0.
    private static void ZeroLastNorms(ResNet backbone, ResNetDepth depth)
    {
        string last = ResNet.UsesBottleneck(depth) ? ".bn3.weight" : ".bn2.weight";
        foreach (var (name, t) in backbone.NamedParameters())
            if (name.StartsWith("layer", StringComparison.Ordinal) && name.EndsWith(last, StringComparison.Ordinal) && name.Count(c => c == '.') == 3)
                t.Fill(0);
    }

    private static int Layer3MapSize(int res) { int s = res; for (int i = 0; i < 4; i++) s = (s + 1) / 2; return s; }

    /// <summary>With layer4 experts: copies the backbone's layer4 weights into every expert's copy (after loading pretrained weights, too).</summary>
    public void CopyBackboneLayer4IntoExperts()
    {
        if (Config.ExpertDepth != ExpertDepth.Layer4) return;
        var src = Backbone.StateDict().Where(kv => kv.Key.StartsWith("layer4.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var e in ExpertModules) e.LoadStateDict(src, strict: false);
    }

    /// <summary>Logits only (for <see cref="Module"/> callers).</summary>
    public override Tensor Forward(Tensor x) => Run(x).Logits;

    /// <summary>x: [B, 3, R, R] → logits, boxes, aux loss and the route of every row.</summary>
    public NetOutput Run(Tensor x)
    {
        int b = x.Shape[0];
        Tensor logits;
        Tensor? boxes = null;
        if (Config.ExpertDepth == ExpertDepth.Layer4)
        {
            var l3 = Backbone.ForwardToLayer3(x);            // [B, C3, h3, h3]
            var flat = l3.Flatten(1);                         // [B, C3·h3·h3]
            logits = Moe is not null ? Moe.Forward(flat) : _head!.Forward(flat);
            if (Loc is not null)
            {
                var map = Backbone.Layer4.Forward(l3);        // [B, F, m, m]
                boxes = Loc.Forward(map);
            }
        }
        else
        {
            var map = Backbone.ForwardFeatureMap(x);          // [B, F, m, m]
            var pooled = Backbone.Pool(map);                  // [B, F]
            logits = Moe is not null ? Moe.Forward(pooled) : _head!.Forward(pooled);
            if (Loc is not null) boxes = Loc.Forward(map);    // [B, 4]
        }
        if (Moe is not null)
        {
            var m = Moe.LastMetrics!;
            return new NetOutput(logits, boxes, Moe.LastAuxLoss, m.ExpertIndices, m.Gates, m.K, m.RoutedRows);
        }
        var gates = new double[b];
        Array.Fill(gates, 1.0);
        return new NetOutput(logits, boxes, null, new int[b], gates, 1, [b]);
    }
}
