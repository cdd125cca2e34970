namespace MtlMoe.Engine.Backends;

public partial interface IBackend
{
    /// <summary>
    /// ReLU backward: dx = dy where y &gt; 0, else 0, from dy and the ReLU output y (same shape, any layouts) → a
    /// contiguous dx. The default composes <see cref="Unary"/> (GtScalar) and <see cref="Binary"/> (Mul); a
    /// backend overrides it with one fused pass.
    /// </summary>
    Storage ReluBackward(Storage dy, Layout ldy, Storage y, Layout ly)
    {
        var mask = Unary(UnaryOp.GtScalar, y, ly, 0); // mask: contiguous, like y
        try { return Binary(BinaryOp.Mul, dy, ldy, mask, Layout.Contiguous(ly.Shape)); }
        finally { mask.Release(); }
    }
}
