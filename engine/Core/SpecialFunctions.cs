namespace MtlMoe.Engine;

/// <summary>Special functions .NET's Math lacks, accurate to about 1e-15 in double.</summary>
public static class SpecialFunctions
{
    private const double TwoOverSqrtPi = 1.1283791670955126;

    /// <summary>
    /// Error function. |x| &lt; 2.5: the all-positive series erf(x) = 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1))
    /// (no cancellation); beyond, 1 − erfc from its continued fraction.
    /// </summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return x;
        double ax = Math.Abs(x);
        if (ax < 2.5)
        {
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 200; n++)
            {
                term *= 2 * x2 / (2 * n + 1);
                sum += term;
                if (term < sum * 1e-17) break;
            }
            double r = TwoOverSqrtPi * Math.Exp(-x2) * sum;
            return x < 0 ? -r : r;
        }
        double e = ErfcLarge(ax);
        return x < 0 ? e - 1 : 1 - e;
    }

    /// <summary>Complementary error function 1 − erf(x), accurate in the upper tail.</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return x;
        if (x >= 2.5) return ErfcLarge(x);
        return 1 - Erf(x);
    }

    // erfc(x) for x ≥ 2.5: e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))) by backward recurrence.
    private static double ErfcLarge(double x)
    {
        if (x > 27) return 0;
        double f = x;
        for (int n = 60; n >= 1; n--) f = x + n * 0.5 / f;
        return Math.Exp(-x * x) / (Math.Sqrt(Math.PI) * f);
    }

    /// <summary>Standard normal CDF Φ(x) = erfc(−x/√2)/2.</summary>
    public static double NormCdf(double x) => 0.5 * Erfc(-x / Math.Sqrt(2));

    /// <summary>Standard normal density φ(x).</summary>
    public static double NormPdf(double x) => Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);
}
