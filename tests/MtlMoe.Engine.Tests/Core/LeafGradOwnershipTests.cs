using MtlMoe.Engine;

namespace MtlMoe.Tests.Core;

/// <summary>
/// Backward hands a leaf its first gradient's memory instead of a copy when nothing else shares it; these check the
/// cases where it must still copy (one gradient object reaching two leaves, a caller's gradient, a view) and that
/// nothing leaks.
/// </summary>
public class LeafGradOwnershipTests
{
    [Test]
    public void TwoLeavesFedTheSameGradientGetIndependentCopies()
    {
        using var a = Tensor.FromArray(new[] { 1f, 2f, 3f }, [3]).RequireGrad();
        using var b = Tensor.FromArray(new[] { 4f, 5f, 6f }, [3]).RequireGrad();
        using var c = Tensor.FromArray(new[] { 2f, 3f, 4f }, [3]);
        // mul's backward makes a fresh dense gradient; add hands that same object to both leaves
        using (var y = ((a + b) * c).Sum()) y.Backward();
        Assert.That(a.Grad!.ToFloatArray(), Is.EqualTo(new[] { 2f, 3f, 4f }));
        a.Grad!.Fill(5.0);
        Assert.That(b.Grad!.ToFloatArray(), Is.EqualTo(new[] { 2f, 3f, 4f }), "b's gradient changed with a's");
        a.ZeroGrad();
        Assert.That(b.Grad!.ToFloatArray(), Is.EqualTo(new[] { 2f, 3f, 4f }), "b's gradient freed with a's");
        b.ZeroGrad();
    }

    [Test]
    public void ACallersGradientIsCopiedNotTaken()
    {
        using var a = Tensor.FromArray(new[] { 1f, 2f }, [2]).RequireGrad();
        using var dy = Tensor.FromArray(new[] { 3f, 4f }, [2]);
        using (var y = a * 1.0) y.Backward(dy);
        using (var z = a.Reshape([2])) { } // a view of the leaf, no backward
        dy.Fill(7.0);
        Assert.That(a.Grad!.ToFloatArray(), Is.EqualTo(new[] { 3f, 4f }));
        a.ZeroGrad();
    }

    [Test]
    public void AViewGradientIsCopiedAndGradientsMatchAfterTakingOver()
    {
        using var w = Tensor.FromArray(new[] { 1f, 2f, 3f, 4f, 5f, 6f }, [2, 3]).RequireGrad();
        // w.T's backward hands back a view of the upstream gradient: a non-contiguous view must be copied.
        using (var y = (w.T * Tensor.FromArray(new[] { 1f, 2f, 3f, 4f, 5f, 6f }, [3, 2])).Sum()) y.Backward();
        Assert.That(w.Grad!.ToFloatArray(), Is.EqualTo(new[] { 1f, 3f, 5f, 2f, 4f, 6f }));
        Assert.That(w.Grad!.IsContiguous, Is.True);
        w.ZeroGrad();
    }

    // Serial: it compares the process-wide live-tensor counters (MemoryStats) before and after, which parallel tests move.
    [Test, NonParallelizable]
    public void RepeatedStepsDoNotLeakStorages()
    {
        using var a = Tensor.FromArray(new[] { 1f, 2f, 3f, 4f }, [4]).RequireGrad();
        void Step()
        {
            using var scope = DisposeScope.Begin();
            a.ZeroGrad();
            ((a * a).Sum()).Backward();
        }
        Step();
        long storages = MemoryStats.LiveStorages, tensors = MemoryStats.LiveTensors;
        for (int i = 0; i < 5; i++) Step();
        Assert.That(MemoryStats.LiveStorages, Is.EqualTo(storages));
        Assert.That(MemoryStats.LiveTensors, Is.EqualTo(tensors));
        Assert.That(a.Grad!.ToFloatArray(), Is.EqualTo(new[] { 2f, 4f, 6f, 8f }));
        a.ZeroGrad();
    }
}
