using MtlMoe.Engine;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Tests.Core;

/// <summary>The public host-buffer path a data loader uses: rent a CPU storage, fill it, wrap it as a tensor.</summary>
public class FromStorageTests
{
    [Test]
    public void ARentedBufferBecomesATensorWithoutACopy()
    {
        var storage = CpuStorage.Rent(DType.Float32, 6);
        var data = storage.Array<float>();
        for (int i = 0; i < 6; i++) data[i] = i + 0.5f;
        using var t = Tensor.FromStorage(storage, [2, 3]);
        Assert.That(t.Storage, Is.SameAs(storage));
        Assert.That(t.ToFloatArray(), Is.EqualTo(new[] { 0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f }));
    }

    [Test]
    public void ASizeThatDoesNotMatchTheShapeIsRefused()
    {
        var storage = CpuStorage.Rent(DType.Float32, 5, zero: true);
        var ex = Assert.Throws<ShapeException>(() => Tensor.FromStorage(storage, [2, 3]));
        Assert.That(ex!.Message, Does.Contain("5 elements").And.Contain("[2, 3]"));
        using var ok = Tensor.FromStorage(storage, [5]); // releases the storage when disposed
        Assert.That(ok.ToFloatArray(), Is.All.EqualTo(0f));
    }
}
