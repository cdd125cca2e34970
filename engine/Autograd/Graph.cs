namespace MtlMoe.Engine.Autograd;

/// <summary>Records ops and runs the reverse pass.</summary>
public static class Graph
{
    /// <summary>True when an op on these inputs should be recorded.</summary>
    public static bool ShouldRecord(ReadOnlySpan<Tensor> inputs)
    {
        if (!GradMode.IsEnabled) return false;
        foreach (var t in inputs) if (t.RequiresGrad) return true;
        return false;
    }

    /// <summary>
    /// Attaches a backward to <paramref name="output"/> when grad mode is on and any input requires
    /// gradients. <paramref name="backward"/> returns one gradient per input, shaped like that input.
    /// Tensors the backward reads that are neither inputs nor the output go in <paramref name="saved"/>,
    /// so that disposing them early is deferred until the backward has run.
    /// </summary>
    public static void Record(Tensor output, string op, Tensor[] inputs, Func<Tensor, Tensor?[]> backward, Tensor[]? saved = null)
    {
        if (!ShouldRecord(inputs)) return;
        if (OpProfile.Enabled) OpProfile.Lap("fwd " + op);
        output.MarkRequiresGrad();
        output.GradFn = new GradNode(op, output, inputs, backward, saved);
    }

    /// <summary>
    /// Back-propagates from <paramref name="root"/>, accumulating into the <see cref="Tensor.Grad"/> of
    /// every leaf that requires gradients. The graph is freed unless <paramref name="retainGraph"/>.
    /// </summary>
    public static void Backward(Tensor root, Tensor? gradient = null, bool retainGraph = false)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException("backward: the tensor does not require gradients (no input of its graph has RequiresGrad)");
        if (gradient is null && root.Count != 1)
            throw new InvalidOperationException($"backward: the tensor {Shapes.Format(root.Shape)} is not a scalar; pass its gradient explicitly");
        if (gradient is not null && !Shapes.Equal(gradient.Shape, root.Shape))
            throw new ShapeException($"backward: gradient {Shapes.Format(gradient.Shape)} does not match tensor {Shapes.Format(root.Shape)}");

        OpProfile.Lap("fwd (after last op)");
        var order = TopologicalOrder(root);
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        using var _ = GradMode.NoGrad();
        // Gradients follow the dtypes the forward recorded; a backward called inside an autocast scope must not re-cast them.
        using var noAutocast = Amp.Autocast.Suspend();
        // Every intermediate gradient is freed when the pass ends; leaf gradients are made outside this scope.
        using var temporaries = DisposeScope.Begin();
        grads[root] = gradient ?? root.OnesLike();

        for (int i = order.Count - 1; i >= 0; i--)
        {
            var t = order[i];
            if (!grads.Remove(t, out var g)) continue;
            var node = t.GradFn;
            if (node is null) { AccumulateLeaf(t, g, temporaries); continue; }
            if (node.BackwardFn is null)
                throw new InvalidOperationException(
                    $"backward: trying to go through the graph a second time (op '{node.Op}'); its saved tensors were freed by the first Backward(). Call Backward(retainGraph: true) the first time.");
            long t0 = OpProfile.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            var inputGrads = node.BackwardFn(g);
            if (OpProfile.Enabled) OpProfile.Add("bwd " + node.Op, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
            var inputs = node.Inputs;
            if (inputGrads.Length != inputs.Length) throw new InvalidOperationException($"backward of '{node.Op}' returned {inputGrads.Length} gradients for {inputs.Length} inputs");
            for (int k = 0; k < inputs.Length; k++)
            {
                var gi = inputGrads[k];
                var input = inputs[k];
                if (gi is null || !input.RequiresGrad) continue;
                if (!Shapes.Equal(gi.Shape, input.Shape))
                    throw new InvalidOperationException($"backward of '{node.Op}': gradient {Shapes.Format(gi.Shape)} for input {k} of shape {Shapes.Format(input.Shape)}");
                if (gi.DType != input.DType)
                    throw new InvalidOperationException($"backward of '{node.Op}': gradient {gi.DType.Name()} for input {k} of dtype {input.DType.Name()}");
                if (grads.TryGetValue(input, out var prev)) grads[input] = Ops.Add(prev, gi);
                else grads[input] = gi;
            }
            if (!retainGraph) node.Free();
        }
        OpProfile.Mark();
    }

    private static void AccumulateLeaf(Tensor leaf, Tensor g, DisposeScope temporaries)
    {
        if (!leaf.RequiresGrad) return;
        if (leaf.Grad is null)
        {
            // A gradient made during this pass whose memory nobody else shares (one reference, no view, the whole
            // storage) is handed to the leaf instead of copied; the pass's own tensor object still goes with the
            // scope, so an entry elsewhere in the pass that holds the same object sees two references and copies.
            var s = g.Storage;
            if (g.OwningScope == temporaries && s.RefCount == 1 && g.IsContiguous && g.Layout.Offset == 0 && g.Count == s.Length)
            {
                s.AddRef();
                leaf.Grad = DisposeScope.Outside(() => Tensor.FromStorage(s, (int[])g.Shape.Clone()));
            }
            else leaf.Grad = DisposeScope.Outside(() => g.To(g.DType, copy: true));
        }
        else
        {
            var sum = DisposeScope.Outside(() => Ops.Add(leaf.Grad, g));
            leaf.Grad.Dispose();
            leaf.Grad = sum;
        }
    }

    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        // Iterative DFS (deep nets overflow a recursive one); post-order gives inputs before users.
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor t, int next)>();
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.GradFn?.Inputs ?? [];
            if (next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var child = inputs[next];
                if (child.RequiresGrad && visited.Add(child)) stack.Push((child, 0));
            }
            else order.Add(t);
        }
        return order;
    }
}
