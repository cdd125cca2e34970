namespace MtlMoe.Engine.NN;

/// <summary>y = x·Wᵀ + b; weight [out, in], bias [out]; x: [..., in] → [..., out].</summary>
public sealed class Linear : Module
{
    /// <summary>[out, in]</summary>
    public Tensor Weight { get; }
    /// <summary>[out] or null.</summary>
    public Tensor? Bias { get; }

    /// <summary>A layer initialised like PyTorch's (U(±1/√in)) from <paramref name="rng"/> (default generator when null).</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true, Rng? rng = null, DType dtype = DType.Float32)
    {
        if (inFeatures <= 0 || outFeatures <= 0) throw new ArgumentException($"linear: features must be positive, got in={inFeatures} out={outFeatures}");
        rng ??= Rng.Default;
        Weight = RegisterParameter("weight", Init.DefaultLayer(DisposeScope.Outside(() => Tensor.Zeros([outFeatures, inFeatures], dtype)), inFeatures, rng));
        if (bias) Bias = RegisterParameter("bias", Init.DefaultLayer(DisposeScope.Outside(() => Tensor.Zeros([outFeatures], dtype)), inFeatures, rng));
    }

    /// <summary>Input features.</summary>
    public int InFeatures => Weight.Shape[1];
    /// <summary>Output features.</summary>
    public int OutFeatures => Weight.Shape[0];

    /// <inheritdoc />
    public override Tensor Forward(Tensor x) => Ops.Linear(x, Weight, Bias);
}
