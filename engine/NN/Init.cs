namespace MtlMoe.Engine.NN;

/// <summary>Which fan Kaiming initialisation preserves the variance of.</summary>
public enum FanMode
{
    /// <summary>Inputs per output unit (preserves forward variance).</summary>
    FanIn,
    /// <summary>Outputs per input unit (preserves backward variance; torchvision's ResNet choice).</summary>
    FanOut,
}

/// <summary>Seeded weight initialisers; each overwrites a tensor in place and returns it.</summary>
public static class Init
{
    /// <summary>(fan_in, fan_out) of a weight [out, in, k…].</summary>
    public static (int FanIn, int FanOut) Fans(Tensor w)
    {
        if (w.Rank < 2) throw new ShapeException($"init: fans need a weight of rank ≥ 2, got {Shapes.Format(w.Shape)}");
        int receptive = 1;
        for (int i = 2; i < w.Rank; i++) receptive *= w.Shape[i];
        return (w.Shape[1] * receptive, w.Shape[0] * receptive);
    }

    private static Tensor Set(Tensor t, Func<double> sample)
    {
        var v = new double[t.Count];
        for (int i = 0; i < v.Length; i++) v[i] = sample();
        using var src = Tensor.FromArray(v, (int[])t.Shape.Clone(), t.Device);
        using (Autograd.GradMode.NoGrad()) t.CopyFrom(src);
        return t;
    }

    /// <summary>U(lo, hi).</summary>
    public static Tensor Uniform(Tensor t, double lo, double hi, Rng rng) => Set(t, () => rng.Uniform(lo, hi));

    /// <summary>N(mean, std²).</summary>
    public static Tensor Normal(Tensor t, double mean, double std, Rng rng) => Set(t, () => mean + std * rng.NextGaussian());

    /// <summary>He normal: N(0, 2/fan) for ReLU networks.</summary>
    public static Tensor KaimingNormal(Tensor t, Rng rng, FanMode mode = FanMode.FanIn)
    {
        var (fi, fo) = Fans(t);
        return Normal(t, 0, Math.Sqrt(2.0 / (mode == FanMode.FanIn ? fi : fo)), rng);
    }

    /// <summary>He uniform: U(±√(6/fan)).</summary>
    public static Tensor KaimingUniform(Tensor t, Rng rng, FanMode mode = FanMode.FanIn)
    {
        var (fi, fo) = Fans(t);
        double b = Math.Sqrt(6.0 / (mode == FanMode.FanIn ? fi : fo));
        return Uniform(t, -b, b, rng);
    }

    /// <summary>Glorot uniform: U(±√(6/(fan_in+fan_out))).</summary>
    public static Tensor XavierUniform(Tensor t, Rng rng)
    {
        var (fi, fo) = Fans(t);
        double b = Math.Sqrt(6.0 / (fi + fo));
        return Uniform(t, -b, b, rng);
    }

    /// <summary>Glorot normal: N(0, 2/(fan_in+fan_out)).</summary>
    public static Tensor XavierNormal(Tensor t, Rng rng)
    {
        var (fi, fo) = Fans(t);
        return Normal(t, 0, Math.Sqrt(2.0 / (fi + fo)), rng);
    }

    /// <summary>
    /// PyTorch's default for Linear and Conv weights: U(±1/√fan_in) (Kaiming uniform with a = √5),
    /// and the same bound for their biases.
    /// </summary>
    public static Tensor DefaultLayer(Tensor t, int fanIn, Rng rng)
    {
        double b = fanIn > 0 ? 1 / Math.Sqrt(fanIn) : 0;
        return Uniform(t, -b, b, rng);
    }
}
