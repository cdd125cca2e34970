namespace MtlMoe.Engine.NN;

/// <summary>Inverted dropout with probability <see cref="P"/> while training; identity in eval mode. Any shape.</summary>
public sealed class Dropout : Module
{
    private readonly Rng? _rng;

    /// <summary>Drops each element with probability <paramref name="p"/>, drawing masks from <paramref name="rng"/> (the default generator when null).</summary>
    public Dropout(double p = 0.5, Rng? rng = null)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, $"dropout: probability must be in [0, 1], got {p}");
        P = p;
        _rng = rng;
    }

    /// <summary>Drop probability.</summary>
    public double P { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor x) => Ops.Dropout(x, P, Training, _rng);
}
