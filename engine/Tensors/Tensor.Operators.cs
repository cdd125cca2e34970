namespace MtlMoe.Engine;

public sealed partial class Tensor
{
    /// <summary>a + b</summary>
    public static Tensor operator +(Tensor a, Tensor b) => Ops.Add(a, b);
    /// <summary>a − b</summary>
    public static Tensor operator -(Tensor a, Tensor b) => Ops.Sub(a, b);
    /// <summary>a · b</summary>
    public static Tensor operator *(Tensor a, Tensor b) => Ops.Mul(a, b);
    /// <summary>a / b</summary>
    public static Tensor operator /(Tensor a, Tensor b) => Ops.Div(a, b);
    /// <summary>−a</summary>
    public static Tensor operator -(Tensor a) => Ops.Neg(a);
    /// <summary>a + s</summary>
    public static Tensor operator +(Tensor a, double s) => Ops.AddScalar(a, s);
    /// <summary>s + a</summary>
    public static Tensor operator +(double s, Tensor a) => Ops.AddScalar(a, s);
    /// <summary>a − s</summary>
    public static Tensor operator -(Tensor a, double s) => Ops.AddScalar(a, -s);
    /// <summary>s − a</summary>
    public static Tensor operator -(double s, Tensor a) => Ops.RSubScalar(a, s);
    /// <summary>a · s</summary>
    public static Tensor operator *(Tensor a, double s) => Ops.MulScalar(a, s);
    /// <summary>s · a</summary>
    public static Tensor operator *(double s, Tensor a) => Ops.MulScalar(a, s);
    /// <summary>a / s</summary>
    public static Tensor operator /(Tensor a, double s) => Ops.MulScalar(a, 1.0 / s);
    /// <summary>s / a</summary>
    public static Tensor operator /(double s, Tensor a) => Ops.RDivScalar(a, s);

    /// <summary>Matrix product (see <see cref="Ops.MatMul"/>).</summary>
    public Tensor MatMul(Tensor other) => Ops.MatMul(this, other);
    /// <summary>Sum over dims (all when none).</summary>
    public Tensor Sum(int[]? dims = null, bool keepDim = false) => Ops.Sum(this, dims, keepDim);
    /// <summary>Mean over dims (all when none).</summary>
    public Tensor Mean(int[]? dims = null, bool keepDim = false) => Ops.Mean(this, dims, keepDim);
    /// <summary>Element-wise exponential.</summary>
    public Tensor Exp() => Ops.Exp(this);
    /// <summary>Element-wise natural log.</summary>
    public Tensor Log() => Ops.Log(this);
    /// <summary>max(x, 0).</summary>
    public Tensor Relu() => Ops.Relu(this);
    /// <summary>xᵖ element-wise.</summary>
    public Tensor Pow(double p) => Ops.Pow(this, p);
}
