namespace MtlMoe.Engine.Amp;

/// <summary>What autocast does to an op's floating-point inputs.</summary>
public enum AmpRule
{
    /// <summary>Float32 inputs are cast to the autocast dtype (bf16): the ops whose time is in tensor-core math.</summary>
    LowPrecision,
    /// <summary>bf16 inputs are cast to float32: losses, softmax, statistics, reductions, gating, optimizer.</summary>
    Float32,
    /// <summary>Mixed bf16/float32 inputs all go to float32; all-bf16 inputs stay bf16 (binary pointwise on activations).</summary>
    Widest,
    /// <summary>No cast: the op runs in its input's dtype (unary pointwise, pooling, dispatch, layout changes).</summary>
    AsIs,
    /// <summary>Input 0 (the activation) as it is; every other float input (weight, bias, statistics) float32.</summary>
    ActivationAsIsParamsFloat32,
}

/// <summary>
/// The autocast op policy, written once above the backend seam: one table from op name (the names ops record in
/// the autograd graph) to <see cref="AmpRule"/>, and <see cref="CastFor(string, IReadOnlyList{DType})"/>, which turns the current scope and an
/// op's input dtypes into the dtypes the op should run on. Float64 and integer inputs are never cast (gradient
/// checks stay exact; indices stay indices). Master weights and optimizer state are float32 outside this table.
/// </summary>
public static class AutocastPolicy
{
    private static readonly Dictionary<string, AmpRule> Table = Build();

    private static Dictionary<string, AmpRule> Build()
    {
        var t = new Dictionary<string, AmpRule>(StringComparer.Ordinal);
        void Add(AmpRule rule, params string[] ops) { foreach (var op in ops) t.Add(op, rule); }
        // bf16: convolutions and matrix products (tensor cores, float32 accumulation inside cuBLAS/cuDNN).
        Add(AmpRule.LowPrecision, "conv2d", "matmul", "linear", "bmm");
        // float32: everything whose accuracy decides the loss or the routing.
        Add(AmpRule.Float32,
            "softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "smooth_l1_loss", "giou_loss", "box_loss",
            "sum", "mean", "var", "norm", "cumsum",
            "exp", "log", "pow", "softplus", "erf", "norm_cdf",
            "moe_gate_logits",   // x·W_g and x·W_noise of the gate: a matmul kept in float32 on purpose
            "moe_gating", "moe_noise", "moe_cv2", "moe_aux_loss",
            "sgd_step", "adamw_step");
        // Pointwise with two activation inputs: promote a mixed pair.
        Add(AmpRule.Widest, "add", "sub", "mul", "div", "maximum", "minimum", "where", "cat", "stack");
        // No cast: the activation's dtype flows through.
        Add(AmpRule.AsIs,
            "relu", "relu_backward", "neg", "abs", "sigmoid", "tanh", "dropout", "add_scalar", "mul_scalar", "clamp",
            "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
            "moe_dispatch", "moe_combine",
            "reshape", "view", "transpose", "permute", "narrow", "select", "contiguous", "copy", "flatten",
            "to_channels_last", "to_channels_first");
        // Batch norm and its fused forms: bf16 activations in and out, statistics and affine parameters float32.
        Add(AmpRule.ActivationAsIsParamsFloat32, "batch_norm2d", "batch_norm2d_relu", "batch_norm2d_add_relu");
        return t;
    }

    /// <summary>Every op with a policy entry and its rule.</summary>
    public static IReadOnlyDictionary<string, AmpRule> Rules => Table;

    /// <summary>The rule of <paramref name="op"/>; an op without an entry is an error that names it.</summary>
    public static AmpRule RuleOf(string op) => Table.TryGetValue(op, out var r) ? r
        : throw new KeyNotFoundException($"autocast: op '{op}' has no entry in AutocastPolicy; give it a rule before it runs under autocast");

    /// <summary>
    /// The dtypes <paramref name="op"/> should see for inputs of dtypes <paramref name="inputs"/> under the current
    /// <see cref="Autocast"/> scope (unchanged when autocast is off). Only Float32 and BFloat16 inputs change.
    /// </summary>
    public static DType[] CastFor(string op, IReadOnlyList<DType> inputs) => CastFor(op, inputs, Autocast.Current);

    /// <summary><see cref="CastFor(string, IReadOnlyList{DType})"/> for an explicit autocast dtype (null: off).</summary>
    public static DType[] CastFor(string op, IReadOnlyList<DType> inputs, DType? autocast)
    {
        var rule = RuleOf(op);   // an unknown op fails even with autocast off, so a missing entry shows in every test
        var result = new DType[inputs.Count];
        for (int i = 0; i < inputs.Count; i++) result[i] = inputs[i];
        if (autocast is not DType low) return result;
        static bool Castable(DType d) => d is DType.Float32 or DType.BFloat16;
        bool anyF32 = false;
        foreach (var d in inputs) anyF32 |= d == DType.Float32;
        for (int i = 0; i < result.Length; i++)
        {
            if (!Castable(result[i])) continue;
            result[i] = rule switch
            {
                AmpRule.LowPrecision => low,
                AmpRule.Float32 => DType.Float32,
                AmpRule.Widest => anyF32 ? DType.Float32 : result[i],
                AmpRule.ActivationAsIsParamsFloat32 => i == 0 ? result[i] : DType.Float32,
                _ => result[i],
            };
        }
        return result;
    }
}
