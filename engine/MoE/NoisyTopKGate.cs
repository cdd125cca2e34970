using MtlMoe.Engine.NN;

namespace MtlMoe.Engine.MoE;

/// <summary>
/// The gating network: parameters "w_gate" and "w_noise", both [D, E] and zero at start (tensor2tensor),
/// so routing is uniform at first and is learned through the softmax and the load loss.
/// </summary>
public sealed class NoisyTopKGate : Module
{
    /// <summary>W_g: [D, E].</summary>
    public Tensor WGate { get; }
    /// <summary>W_noise: [D, E].</summary>
    public Tensor WNoise { get; }
    /// <summary>Experts per row.</summary>
    public int K { get; }
    /// <summary>Whether training adds noise.</summary>
    public bool Noisy { get; }
    /// <summary>σ's floor.</summary>
    public double NoiseFloor { get; }

    /// <summary>A gate over <paramref name="inputDim"/> features and <paramref name="numExperts"/> experts.</summary>
    public NoisyTopKGate(int inputDim, int numExperts, int k, bool noisy = true, double noiseFloor = 1e-2, DType dtype = DType.Float32)
    {
        if (inputDim < 1) throw new ArgumentException($"moe gate: input dim must be positive, got {inputDim}");
        if (numExperts < 1) throw new ArgumentException($"moe gate: numExperts must be at least 1, got {numExperts}");
        if (k < 1 || k > numExperts) throw new ArgumentException($"moe gate: k must be in [1, numExperts = {numExperts}], got {k}");
        K = k; Noisy = noisy; NoiseFloor = noiseFloor;
        WGate = RegisterParameter("w_gate", DisposeScope.Outside(() => Tensor.Zeros([inputDim, numExperts], dtype)));
        WNoise = RegisterParameter("w_noise", DisposeScope.Outside(() => Tensor.Zeros([inputDim, numExperts], dtype)));
    }

    /// <summary>Gating of x: [B, D]; noise ε from <paramref name="noiseRng"/> in training mode when noisy.</summary>
    public GatingResult Gate(Tensor x, Rng noiseRng) => MoeFunctional.Gate(x, WGate, Noisy ? WNoise : null, K, NoiseFloor, Training, noiseRng);

    /// <summary>The gates [B, E] (use <see cref="Gate"/> for importance, load and the chosen experts).</summary>
    public override Tensor Forward(Tensor x)
    {
        var g = Gate(x, Rng.Default);
        g.Importance.Dispose(); g.Load.Dispose(); g.TopIndices.Dispose(); g.Packed.Dispose();
        return g.Gates;
    }
}
