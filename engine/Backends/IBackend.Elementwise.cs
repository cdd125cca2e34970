namespace MtlMoe.Engine.Backends;

public partial interface IBackend
{
    /// <summary>Element-wise unary op; <paramref name="alpha"/>/<paramref name="beta"/> are its scalar parameters.</summary>
    Storage Unary(UnaryOp op, StorageView x, double alpha = 0, double beta = 0);

    /// <summary>Element-wise binary op on two layouts of the same shape (broadcast dims have stride 0).</summary>
    Storage Binary(BinaryOp op, StorageView a, StorageView b);

    /// <summary>cond ? a : b element-wise; all three layouts have the same shape; cond is non-zero for true.</summary>
    Storage Where(StorageView cond, StorageView a, StorageView b);
}

/// <summary>Element-wise unary ops. α and β are the op's scalar parameters where it has any.</summary>
public enum UnaryOp
{
    Neg, Abs, Sign, Exp, Log, Sqrt, Relu, Sigmoid, Tanh, Softplus, Erf, NormCdf,
    /// <summary>x + α</summary>
    AddScalar,
    /// <summary>x · α</summary>
    MulScalar,
    /// <summary>α / x</summary>
    RDivScalar,
    /// <summary>x ^ α</summary>
    PowScalar,
    /// <summary>min(max(x, α), β)</summary>
    Clamp,
    /// <summary>x &gt; α ? 1 : 0</summary>
    GtScalar,
    /// <summary>x &lt; α ? 1 : 0</summary>
    LtScalar,
    /// <summary>x ≥ α ? 1 : 0</summary>
    GeScalar,
    /// <summary>x ≤ α ? 1 : 0</summary>
    LeScalar,
    /// <summary>x == α ? 1 : 0</summary>
    EqScalar,
    /// <summary>α ≤ x ≤ β ? 1 : 0 (clamp's gradient mask)</summary>
    InRange,
}

/// <summary>Element-wise binary ops; comparisons give 1 or 0 in the inputs' dtype.</summary>
public enum BinaryOp { Add, Sub, Mul, Div, Maximum, Minimum, Pow, Gt, Lt, Ge, Le, Eq, Ne }
