using MtlMoe.Engine.NN;

namespace MtlMoe.Engine.MoE;

/// <summary>
/// Sparsely-gated mixture of experts (Shazeer et al. 2017): children "gate" (parameters "gate.w_gate",
/// "gate.w_noise") and "experts" ("experts.0.…", "experts.1.…"). Forward maps x: [B, D] to the gate-weighted
/// sum of each row's k experts, [B, H]; the auxiliary loss and routing metrics of the last call are kept.
/// </summary>
public sealed class MoeLayer : Module
{
    /// <summary>The options the layer was built with.</summary>
    public MoeOptions Options { get; }
    /// <summary>The gating network.</summary>
    public NoisyTopKGate Gate { get; }
    /// <summary>The experts.</summary>
    public ExpertList Experts { get; }
    /// <summary>Source of the gating noise ε; reseed it to reproduce a step.</summary>
    public Rng NoiseRng { get; set; }

    /// <summary>Aux loss of the last forward (a scalar in the graph; add it to the loss). Owned by the caller's scope like any op output.</summary>
    public Tensor? LastAuxLoss { get; private set; }
    /// <summary>Metrics of the last forward.</summary>
    public MoeMetrics? LastMetrics { get; private set; }

    /// <summary>
    /// A layer over <paramref name="inputDim"/> features whose experts come from <paramref name="expertFactory"/>
    /// (called with 0 … E−1; each maps [n, inputDim] to [n, H] with the same H).
    /// </summary>
    public MoeLayer(int inputDim, MoeOptions options, Func<int, Module> expertFactory, Rng? noiseRng = null, DType dtype = DType.Float32)
    {
        options.Validate();
        Options = options;
        NoiseRng = noiseRng ?? new Rng(0x40E);
        Gate = RegisterModule("gate", new NoisyTopKGate(inputDim, options.NumExperts, options.K, options.NoisyGating, options.NoiseFloor, dtype));
        Experts = RegisterModule("experts", new ExpertList(Enumerable.Range(0, options.NumExperts).Select(expertFactory)));
    }

    /// <summary>Forward of x: [B, D] → [B, H]; sets <see cref="LastAuxLoss"/> and <see cref="LastMetrics"/>.</summary>
    public override Tensor Forward(Tensor x)
    {
        var fns = Enumerable.Range(0, Experts.Count).Select(i => (Func<Tensor, Tensor>)Experts[i].Forward).ToList();
        var r = MoeFunctional.Forward(x, Gate.WGate, Gate.WNoise, fns, Options, Training, NoiseRng);
        LastAuxLoss = r.AuxLoss;
        LastMetrics = r.Metrics;
        return r.Output;
    }
}
