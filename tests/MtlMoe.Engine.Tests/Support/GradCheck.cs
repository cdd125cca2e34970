using MtlMoe.Engine;

namespace MtlMoe.Tests.Support;

/// <summary>
/// Central-difference gradient check in float64: compares autograd's gradient of
/// L = Σ f(x)·w (w a fixed random projection) with (L(x+ε) − L(x−ε)) / 2ε for every input element.
/// </summary>
public static class GradCheck
{
    /// <summary>Largest error |analytic − numeric| / max(1, |analytic|, |numeric|) over every input element.</summary>
    public static double MaxError(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, ulong seed = 1234)
    {
        foreach (var t in inputs)
            if (t.DType != DType.Float64) throw new ArgumentException("gradient checks run in float64");
        var values = inputs.Select(t => t.ToArray<double>()).ToArray();
        var shapes = inputs.Select(t => (int[])t.Shape.Clone()).ToArray();

        // Analytic gradients.
        var leaves = values.Select((v, i) => Tensor.FromArray((double[])v.Clone(), shapes[i]).RequireGrad()).ToArray();
        double[] projection;
        using (var y = f(leaves))
        {
            var rng = new Rng(seed);
            projection = new double[y.Count];
            for (int i = 0; i < projection.Length; i++) projection[i] = rng.Uniform(-1, 1);
            using var w = Tensor.FromArray(projection, (int[])y.Shape.Clone());
            using var prod = Ops.Mul(y, w);
            using var loss = Ops.Sum(prod);
            loss.Backward();
        }
        var analytic = leaves.Select(l => l.Grad?.ToArray<double>() ?? new double[l.Count]).ToArray();
        foreach (var l in leaves) { l.ZeroGrad(); l.Dispose(); }

        double Loss(double[][] vals)
        {
            var ts = vals.Select((v, i) => Tensor.FromArray(v, shapes[i])).ToArray();
            try
            {
                using var y = f(ts);
                var yv = y.ToDoubleArray();
                double s = 0;
                for (int i = 0; i < yv.Length; i++) s += yv[i] * projection[i];
                return s;
            }
            finally { foreach (var t in ts) t.Dispose(); }
        }

        double worst = 0;
        for (int k = 0; k < values.Length; k++)
        {
            for (int i = 0; i < values[k].Length; i++)
            {
                double orig = values[k][i];
                values[k][i] = orig + eps; double lp = Loss(values);
                values[k][i] = orig - eps; double lm = Loss(values);
                values[k][i] = orig;
                double numeric = (lp - lm) / (2 * eps);
                double a = analytic[k][i];
                double err = Math.Abs(a - numeric) / Math.Max(1, Math.Max(Math.Abs(a), Math.Abs(numeric)));
                worst = Math.Max(worst, err);
            }
        }
        return worst;
    }

    /// <summary>Asserts the gradient check passes with error below <paramref name="tolerance"/>.</summary>
    public static void Assert(string op, Func<Tensor[], Tensor> f, params Tensor[] inputs) => Assert(op, f, 1e-7, inputs);

    /// <summary>Asserts the gradient check passes with error below <paramref name="tolerance"/>.</summary>
    public static void Assert(string op, Func<Tensor[], Tensor> f, double tolerance, params Tensor[] inputs)
    {
        try
        {
            double err = MaxError(f, inputs);
            NUnit.Framework.Assert.That(err, Is.LessThan(tolerance), $"gradient check of {op}: max error {err:E3}");
        }
        finally { foreach (var t in inputs) t.Dispose(); }
    }

    /// <summary>Seeded random float64 input.</summary>
    public static Tensor Rand(int[] shape, ulong seed, double lo = -1, double hi = 1)
        => Tensor.Rand(shape, new Rng(seed), lo, hi, DType.Float64);
}
