using System.Numerics;

namespace MtlMoe.Engine.Backends;

/// <summary>
/// The MoE auxiliary loss aux = w_imp·CV²(importance) + w_load·CV²(load), CV²(v) = population variance / (mean² + 1e-10),
/// and its gradient, on the host, for the gating backends that have no fused kernel for it (the CPU; CUDA where E &gt; 64
/// or k &gt; 8). The arithmetic is exactly that of the composed ops it replaces (MoeOps.CvSquared/AuxLoss on the CPU
/// backend): every sum accumulates in double from 0 in element order and rounds once, every scalar step rounds to the
/// element type in the same order, and the gradient adds the contributions to each importance element in the order
/// the autograd pass did — (from the mean's sum + from the centred values) + from the variance's mean. So the fused op
/// trains bit for bit like the composed one (a float32 run's weights are byte-identical).
/// </summary>
public static class MoeAuxLoss
{
    /// <summary>
    /// (aux, CV²(importance), CV²(load)) of importance, load: [E] for weights <paramref name="wImp"/>, <paramref name="wLoad"/>.
    /// </summary>
    public static (T Aux, T CvImportance, T CvLoad) Forward<T>(ReadOnlySpan<T> importance, ReadOnlySpan<T> load, double wImp, double wLoad)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T ci = CvSquared(importance), cl = CvSquared(load);
        T a = ci * T.CreateTruncating(wImp), l = cl * T.CreateTruncating(wLoad);
        return (a + l, ci, cl);
    }

    /// <summary>
    /// d aux / d importance and d aux / d load (each [E]) times the upstream gradient <paramref name="gradAux"/>, added to
    /// <paramref name="dImportance"/> and <paramref name="dLoad"/> (the packed gradient's rows): d[e] = d[e] + g_e.
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> importance, ReadOnlySpan<T> load, T gradAux, double wImp, double wLoad,
        Span<T> dImportance, Span<T> dLoad) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CvSquaredBackward(importance, gradAux * T.CreateTruncating(wImp), dImportance);
        CvSquaredBackward(load, gradAux * T.CreateTruncating(wLoad), dLoad);
    }

    // Σ v in double from +0, rounded once (the CPU backend's float sum).
    private static T Sum<T>(ReadOnlySpan<T> v) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double row = 0;
        foreach (var x in v) row += double.CreateTruncating(x);
        double acc = 0;
        acc += row;
        return T.CreateTruncating(acc);
    }

    // The scale 1/n of a mean, rounded to T as a scalar multiply's parameter is.
    private static T InverseCount<T>(int n) where T : unmanaged, IFloatingPointIeee754<T> => T.CreateTruncating(1.0 / n);

    // CV²(v): mean = Σv·(1/n); den = mean·mean + 1e-10; var = Σ(v − mean)²·(1/n); var / den.
    private static T CvSquared<T>(ReadOnlySpan<T> v) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T inv = InverseCount<T>(v.Length);
        T mean = Sum(v) * inv;
        T den = mean * mean + T.CreateTruncating(1e-10);
        return Variance(v, mean, inv) / den;
    }

    private static T Variance<T>(ReadOnlySpan<T> v, T mean, T inv) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double row = 0;
        foreach (var x in v) { T c = x - mean; row += double.CreateTruncating(c * c); }
        double acc = 0;
        acc += row;
        return T.CreateTruncating(acc) * inv;
    }

    // d[e] += ∂CV²/∂v_e · g, formed as the composed ops' backward forms it:
    //   d var = g / den;  d den = g·(−((var / den) / den));  d mean = d den·mean + d den·mean;
    //   from the mean's sum: d mean·(1/n);  centred c = v − mean: d c = d var·(1/n)·c + (same);
    //   the variance's own mean: Σ(−d c) rounded once, ·(1/n);  d v = (mean part + d c) + variance-mean part.
    private static void CvSquaredBackward<T>(ReadOnlySpan<T> v, T g, Span<T> d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = v.Length;
        T inv = InverseCount<T>(n);
        T mean = Sum(v) * inv;
        T den = mean * mean + T.CreateTruncating(1e-10);
        T var = Variance(v, mean, inv);
        T dVar = g / den;
        T q = var / den, qb = q / den;
        T dDen = g * -qb;
        T dMeanA = dDen * mean, dMeanB = dDen * mean;
        T fromMean = (dMeanA + dMeanB) * inv;
        T dSq = dVar * inv;
        Span<T> dc = n <= 256 ? stackalloc T[n] : new T[n];
        double negSum = 0;
        for (int e = 0; e < n; e++)
        {
            T c = v[e] - mean;
            T a = dSq * c, b = dSq * c;
            dc[e] = a + b;
            negSum += double.CreateTruncating(-dc[e]);
        }
        double acc = 0;
        acc += negSum;
        T fromVarMean = T.CreateTruncating(acc) * inv;
        for (int e = 0; e < n; e++) d[e] = d[e] + ((fromMean + dc[e]) + fromVarMean);
    }
}
