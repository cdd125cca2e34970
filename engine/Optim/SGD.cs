namespace MtlMoe.Engine.Optim;

/// <summary>
/// Stochastic gradient descent with PyTorch's exact rule: d = g + wd·p; with momentum μ the buffer is
/// d on the first step and μ·buf + (1 − dampening)·d after; d = d + μ·buf (Nesterov) or buf; p = p − lr·d.
/// State per parameter: "state.i.momentum_buffer" (only with momentum, once the parameter was stepped).
/// </summary>
public sealed class SGD : Optimizer
{
    private readonly Tensor?[] _buffers;

    /// <summary>SGD over <paramref name="parameters"/>.</summary>
    public SGD(IEnumerable<Tensor> parameters, double lr, double momentum = 0, double weightDecay = 0, bool nesterov = false, double dampening = 0)
        : base(parameters, lr, "sgd")
    {
        if (!(momentum >= 0)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "sgd: momentum must be ≥ 0");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "sgd: weight decay must be ≥ 0");
        if (nesterov && (momentum <= 0 || dampening != 0)) throw new ArgumentException($"sgd: Nesterov momentum requires momentum > 0 and zero dampening (got momentum {momentum}, dampening {dampening})");
        Momentum = momentum; WeightDecay = weightDecay; Nesterov = nesterov; Dampening = dampening;
        _buffers = new Tensor?[Parameters.Count];
    }

    /// <summary>Momentum factor μ (0: plain SGD).</summary>
    public double Momentum { get; }
    /// <summary>L2 penalty added to the gradient.</summary>
    public double WeightDecay { get; }
    /// <summary>Nesterov momentum.</summary>
    public bool Nesterov { get; }
    /// <summary>Dampening of the gradient's share in the momentum buffer.</summary>
    public double Dampening { get; }

    /// <inheritdoc />
    protected override void Update(int index, Tensor param, Tensor grad)
    {
        Tensor? buf = null;
        bool init = false;
        if (Momentum != 0)
        {
            buf = _buffers[index];
            if (buf is null) { buf = _buffers[index] = NewBuffer(param); init = true; }
        }
        param.Backend.SgdUpdate(param.StorageView, grad.StorageView, buf?.StorageView,
            LearningRateOf(index), Momentum, Dampening, WeightDecay, Nesterov, init);
    }

    /// <inheritdoc />
    protected override void AddParamState(Dictionary<string, Tensor> d)
    {
        for (int i = 0; i < _buffers.Length; i++)
            if (_buffers[i] is { } b) d[$"state.{i}.momentum_buffer"] = CopyOf(b);
    }

    /// <inheritdoc />
    protected override bool IsStateField(string field) => field == "momentum_buffer";

    /// <inheritdoc />
    protected override void LoadParamState(IReadOnlyDictionary<(int Index, string Field), Tensor> state)
    {
        DisposeState();
        foreach (var ((i, _), t) in state) _buffers[i] = BufferFrom(Parameters[i], t);
    }

    /// <inheritdoc />
    protected override void DisposeState()
    {
        for (int i = 0; i < _buffers.Length; i++) { _buffers[i]?.Dispose(); _buffers[i] = null; }
    }
}
