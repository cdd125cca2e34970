using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine;

public static partial class Ops
{
    /// <summary>
    /// Inverted dropout: while <paramref name="training"/>, each element is kept with probability 1 − p
    /// (a Bernoulli mask drawn from <paramref name="rng"/>, the default generator when null) and kept
    /// elements are scaled by 1/(1 − p), so the expected value is unchanged. Not training or p = 0 gives
    /// a tracked view of x; p = 1 gives zeros. The gradient is the upstream gradient times the same mask.
    /// </summary>
    public static Tensor Dropout(Tensor x, double p, bool training, Rng? rng = null)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, $"dropout: probability must be in [0, 1], got {p} for input {Shapes.Format(x.Shape)}");
        RequireFloat("dropout", x);
        if (!training || p == 0) return x.Reshape(x.Shape);
        rng ??= Rng.Default;
        // The mask is drawn on the host in row-major order so a seed gives the same mask on every device.
        using var mask = DropoutMask(x, p, rng); // [same as x]: 0 or 1/(1−p)
        var y = BinaryRaw("dropout", Backends.BinaryOp.Mul, x, mask);
        Graph.Record(y, "dropout", [x], g => [BinaryRaw("dropout", Backends.BinaryOp.Mul, g, mask)], saved: [mask]);
        return y;
    }

    private static Tensor DropoutMask(Tensor x, double p, Rng rng)
    {
        int n = x.Count;
        double keep = p >= 1 ? 0 : 1.0 / (1.0 - p);
        if (x.DType == DType.Float64)
        {
            var m = new double[n];
            for (int i = 0; i < n; i++) m[i] = rng.NextDouble() < p ? 0 : keep;
            return Tensor.FromArray(m, (int[])x.Shape.Clone(), x.Device);
        }
        var f = new float[n];
        float keepF = (float)keep;
        for (int i = 0; i < n; i++) f[i] = rng.NextDouble() < p ? 0f : keepF;
        var mask = Tensor.FromArray(f, (int[])x.Shape.Clone(), x.Device);
        if (x.DType == DType.Float32) return mask;
        using (mask) return mask.To(x.DType);   // bf16: the scale rounded once (exact for p = 0.5, 0.2, …)
    }
}
