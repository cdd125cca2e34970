namespace MtlMoe.Engine.NN;

/// <summary>max(x, 0) element-wise; any shape.</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor x) => Ops.Relu(x);
}

/// <summary>Returns its input (as a tracked view, so callers may dispose input and output independently).</summary>
public sealed class Identity : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor x) => x.Reshape(x.Shape);
}
