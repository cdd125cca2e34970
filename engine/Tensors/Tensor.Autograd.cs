using MtlMoe.Engine.Autograd;

namespace MtlMoe.Engine;

public sealed partial class Tensor
{
    /// <summary>Back-propagates from this tensor (a scalar unless <paramref name="gradient"/> is given).</summary>
    public void Backward(Tensor? gradient = null, bool retainGraph = false) => Graph.Backward(this, gradient, retainGraph);

    /// <summary>Disposes and clears the gradient.</summary>
    public void ZeroGrad() { Grad?.Dispose(); Grad = null; }
}
