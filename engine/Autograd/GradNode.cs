namespace MtlMoe.Engine.Autograd;

/// <summary>
/// One recorded op: its inputs and a backward written in engine ops that maps the output's
/// gradient to one gradient per input (null where none flows). Freed after a backward pass.
/// </summary>
public sealed class GradNode
{
    internal GradNode(string op, Tensor output, Tensor[] inputs, Func<Tensor, Tensor?[]> backward, Tensor[]? saved)
    {
        Op = op; Inputs = inputs; BackwardFn = backward; _output = output; _saved = saved ?? [];
        output.AddGraphRef();
        foreach (var t in inputs) t.AddGraphRef();
        foreach (var t in _saved) t.AddGraphRef();
    }

    private Tensor? _output;
    private Tensor[] _saved;

    /// <summary>Name of the op, for messages.</summary>
    public string Op { get; }

    internal Tensor[] Inputs;
    internal Func<Tensor, Tensor?[]>? BackwardFn;

    /// <summary>True once a backward pass has released this node's saved tensors.</summary>
    public bool IsFreed => BackwardFn is null;

    internal void Free()
    {
        if (BackwardFn is null) return;
        BackwardFn = null;
        var inputs = Inputs;
        Inputs = [];
        foreach (var t in inputs) t.ReleaseGraphRef();
        var saved = _saved;
        _saved = [];
        foreach (var t in saved) t.ReleaseGraphRef();
        var o = _output;
        _output = null;
        o?.ReleaseGraphRef();
    }
}
