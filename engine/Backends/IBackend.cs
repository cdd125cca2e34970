namespace MtlMoe.Engine.Backends;

/// <summary>
/// The seam between tensors and compute: a small table of primitives every backend implements.
/// Each primitive is told the layout (shape, strides, offset) of its inputs and returns a new,
/// contiguous storage unless it says otherwise. Autograd lives above this seam, so a backend that
/// implements these gets every gradient for free. Further primitives (conv, pooling, norm, index,
/// optimizer updates) are declared in the other parts of this partial interface, one file per family.
/// </summary>
public partial interface IBackend
{
    /// <summary>The device this backend computes on.</summary>
    Device Device { get; }

    /// <summary>A zero-filled storage of <paramref name="length"/> elements.</summary>
    Storage Allocate(DType dtype, int length);

    /// <summary>A storage holding a copy of host data.</summary>
    Storage Upload<T>(ReadOnlySpan<T> data) where T : unmanaged;

    /// <summary>Copies the elements a layout selects, row-major, into a host buffer of the same element type.</summary>
    void Download<T>(Storage src, Layout layout, Span<T> dst) where T : unmanaged;

    /// <summary>Dense row-major copy of the elements a layout selects.</summary>
    Storage Contiguous(Storage src, Layout layout);

    /// <summary>Writes src's elements into the positions dst's layout selects (same shape, same dtype).</summary>
    void CopyInto(Storage src, Layout srcLayout, Storage dst, Layout dstLayout);

    /// <summary>Converts elements to another dtype (float→int truncates toward zero).</summary>
    Storage Cast(Storage src, Layout layout, DType to);

    /// <summary>Sets every element a layout selects to <paramref name="value"/>.</summary>
    void Fill(Storage dst, Layout layout, double value);

    /// <summary>Element-wise unary op; <paramref name="alpha"/>/<paramref name="beta"/> are its scalar parameters.</summary>
    Storage Unary(UnaryOp op, Storage x, Layout layout, double alpha = 0, double beta = 0);

    /// <summary>Element-wise binary op on two layouts of the same shape (broadcast dims have stride 0).</summary>
    Storage Binary(BinaryOp op, Storage a, Layout la, Storage b, Layout lb);

    /// <summary>cond ? a : b element-wise; all three layouts have the same shape; cond is non-zero for true.</summary>
    Storage Where(Storage cond, Layout lc, Storage a, Layout la, Storage b, Layout lb);

    /// <summary>
    /// Reduces over <paramref name="dims"/> (sorted, distinct); the result has the input's rank with
    /// reduced dims of size 1. ArgMax/ArgMin return Int64 and take exactly one dim (first index on ties).
    /// </summary>
    Storage Reduce(ReduceOp op, Storage x, Layout layout, int[] dims);

    /// <summary>
    /// Batched matrix product: a is [..., m, k], b is [..., k, n] with identical batch dims (stride 0
    /// where broadcast); returns a contiguous [..., m, n]. Either of the last two strides may be 1
    /// (transposed operands are read in place).
    /// </summary>
    Storage MatMul(Storage a, Layout la, Storage b, Layout lb);
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

/// <summary>Reductions.</summary>
public enum ReduceOp { Sum, Max, Min, ArgMax, ArgMin }
