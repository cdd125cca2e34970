using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Tests.Cuda;

/// <summary>
/// The caching allocator while a CUDA graph is captured, on a fake device: served from the cache only, a clear error
/// when it cannot be, and every block the capture touched reserved for the graph until the graph is released.
/// </summary>
public class GraphPoolTests
{
    static (FakeDeviceMemory Dev, CachingAllocator A) Warm(params long[] sizes)
    {
        var dev = new FakeDeviceMemory(1 << 30);
        var a = new CachingAllocator(dev, "cuda:0");
        // An eager run of the step: its blocks end up cached.
        var blocks = sizes.Select(s => a.Allocate(s).Address).ToList();
        foreach (var b in blocks) a.Free(b);
        return (dev, a);
    }

    [Test]
    public void CaptureIsServedFromTheCacheAndNeverFromTheDevice()
    {
        var (dev, a) = Warm(4096, 4096, 1 << 21);
        int allocs = dev.Allocs;
        var pool = a.BeginCapture();
        Assert.That(a.Capturing, Is.True);
        var x = a.Allocate(4000).Address;
        var y = a.Allocate(3000).Address;      // the second cached 4 KiB block
        a.Free(x);                             // freed during the capture: back to the graph's pool...
        var z = a.Allocate(4096).Address;      // ...and reused by the capture itself
        Assert.That(z, Is.EqualTo(x));
        var big = a.Allocate(1 << 21).Address;
        a.EndCapture(pool);
        Assert.That(dev.Allocs, Is.EqualTo(allocs), "no device allocation during the capture");
        Assert.That(pool.BlockCount, Is.EqualTo(3));
        Assert.That(new[] { y, z, big }.Distinct().Count(), Is.EqualTo(3));
    }

    [Test]
    public void ACaptureThatNeedsAnUncachedSizeFailsWithTheSize()
    {
        var (dev, a) = Warm(4096);
        var pool = a.BeginCapture();
        var e = Assert.Throws<GraphCaptureException>(() => a.Allocate(70_000));
        Assert.That(e!.Message, Does.Contain("70000 bytes").And.Contain("run the step eagerly"));
        Assert.Throws<GraphCaptureException>(() => a.EmptyCache(), "the device must not be touched while capturing");
        a.ReleasePool(pool);
        Assert.That(a.Capturing, Is.False);
        Assert.That(a.Allocate(70_000).Address, Is.Not.Zero, "after the capture the device serves again");
        Assert.That(dev.Allocs, Is.EqualTo(2));
    }

    [Test]
    public void TheGraphsBlocksStayReservedUntilItIsReleased()
    {
        var (_, a) = Warm(4096, 4096);
        var pool = a.BeginCapture();
        var kept = a.Allocate(4096).Address;   // e.g. a gradient buffer the graph rewrites on every replay
        var temp = a.Allocate(4096).Address;
        a.Free(temp);                          // a temporary of the step: reserved, the graph writes it on replay
        a.EndCapture(pool);
        Assert.That(a.CachedBytes, Is.Zero, "the capture's free blocks are not back in the cache");
        var other = a.Allocate(4096).Address;  // eager work after the capture gets a fresh block, never the graph's
        Assert.That(other, Is.Not.EqualTo(temp).And.Not.EqualTo(kept));
        a.Free(kept);                          // a graph block freed later stays reserved too
        Assert.That(a.CachedBytes, Is.Zero, "a graph block freed after the capture is not cached");
        a.Free(other);
        Assert.That(a.CachedBytes, Is.EqualTo(4096), "only the eager block is cached");
        Assert.That(pool.FreeBytes, Is.EqualTo(2 * 4096));
        a.ReleasePool(pool);                   // the graph is gone: its blocks serve anyone again
        Assert.That(a.CachedBytes, Is.EqualTo(3 * 4096));
        var again = new[] { a.Allocate(4096).Address, a.Allocate(4096).Address, a.Allocate(4096).Address };
        Assert.That(again, Is.EquivalentTo(new[] { kept, temp, other }));
    }

    [Test]
    public void OnlyOneCaptureAtATime()
    {
        var (_, a) = Warm(512);
        var pool = a.BeginCapture();
        Assert.Throws<InvalidOperationException>(() => a.BeginCapture());
        Assert.Throws<InvalidOperationException>(() => a.EndCapture(new GraphPool()));
        a.EndCapture(pool);
        a.ReleasePool(pool);
    }
}
