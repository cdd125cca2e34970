namespace MtlMoe.Engine.Optim;

/// <summary>
/// Adam with decoupled weight decay (Loshchilov &amp; Hutter), PyTorch's exact rule: t += 1;
/// p = p·(1 − lr·wd); m = lerp(m, g, 1 − β₁); v = β₂·v + (1 − β₂)·g²;
/// p = p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
/// State per stepped parameter: "state.i.step" (int64 scalar), "state.i.exp_avg", "state.i.exp_avg_sq".
/// </summary>
public sealed class AdamW : Optimizer
{
    private readonly Tensor?[] _m, _v;
    private readonly long[] _steps;

    /// <summary>AdamW over <paramref name="parameters"/>.</summary>
    public AdamW(IEnumerable<Tensor> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : base(parameters, lr, "adamw")
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "adamw: beta1 must be in [0, 1)");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "adamw: beta2 must be in [0, 1)");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "adamw: eps must be ≥ 0");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "adamw: weight decay must be ≥ 0");
        Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
        _m = new Tensor?[Parameters.Count]; _v = new Tensor?[Parameters.Count]; _steps = new long[Parameters.Count];
    }

    /// <summary>Decay of the first moment.</summary>
    public double Beta1 { get; }
    /// <summary>Decay of the second moment.</summary>
    public double Beta2 { get; }
    /// <summary>Added to the denominator.</summary>
    public double Eps { get; }
    /// <summary>Decoupled weight decay factor.</summary>
    public double WeightDecay { get; }

    /// <inheritdoc />
    protected override void Update(int index, Tensor param, Tensor grad)
    {
        var m = _m[index] ??= NewBuffer(param);
        var v = _v[index] ??= NewBuffer(param);
        long t = ++_steps[index];
        double bc1 = 1 - Math.Pow(Beta1, t), bc2 = 1 - Math.Pow(Beta2, t);
        param.Backend.AdamWUpdate(param.StorageView, grad.StorageView, m.StorageView, v.StorageView,
            LearningRateOf(index), Beta1, Beta2, Eps, WeightDecay, bc1, bc2);
    }

    /// <inheritdoc />
    protected override void AddParamState(Dictionary<string, Tensor> d)
    {
        for (int i = 0; i < _m.Length; i++)
        {
            if (_m[i] is null) continue;
            d[$"state.{i}.step"] = Tensor.FromArray(new[] { _steps[i] }, []);
            d[$"state.{i}.exp_avg"] = CopyOf(_m[i]!);
            d[$"state.{i}.exp_avg_sq"] = CopyOf(_v[i]!);
        }
    }

    /// <inheritdoc />
    protected override bool IsStateField(string field) => field is "step" or "exp_avg" or "exp_avg_sq";

    /// <inheritdoc />
    protected override void ValidateParamState(IReadOnlyDictionary<(int Index, string Field), Tensor> state)
    {
        foreach (var (i, _) in state.Keys)
            foreach (var f in new[] { "step", "exp_avg", "exp_avg_sq" })
                if (!state.ContainsKey((i, f))) throw new ArgumentException($"adamw: state of parameter {i} lacks 'state.{i}.{f}'");
    }

    /// <inheritdoc />
    protected override void LoadParamState(IReadOnlyDictionary<(int Index, string Field), Tensor> state)
    {
        DisposeState();
        foreach (var ((i, f), t) in state)
        {
            if (f == "step") _steps[i] = (long)t.Item();
            else if (f == "exp_avg") _m[i] = BufferFrom(Parameters[i], t);
            else _v[i] = BufferFrom(Parameters[i], t);
        }
    }

    /// <inheritdoc />
    protected override void DisposeState()
    {
        for (int i = 0; i < _m.Length; i++)
        {
            _m[i]?.Dispose(); _v[i]?.Dispose(); _m[i] = null; _v[i] = null; _steps[i] = 0;
        }
    }
}
