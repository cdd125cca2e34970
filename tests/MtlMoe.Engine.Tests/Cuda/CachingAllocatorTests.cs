using MtlMoe.Engine;
using System.Runtime.InteropServices;
using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Tests.Cuda;

/// <summary>A fake device: hands out increasing addresses up to a byte budget and records every call.</summary>
sealed class FakeDeviceMemory(long capacity) : IDeviceMemory
{
    ulong _next = 0x1000;
    readonly Dictionary<ulong, long> _live = new();
    public long Used { get; private set; }
    public int Allocs { get; private set; }
    public int Frees { get; private set; }
    public int FailedAllocs { get; private set; }

    public bool TryAlloc(long bytes, out ulong address)
    {
        if (Used + bytes > capacity) { FailedAllocs++; address = 0; return false; }
        address = _next;
        _next += (ulong)bytes;
        _live.Add(address, bytes);
        Used += bytes;
        Allocs++;
        return true;
    }

    public void Free(ulong address)
    {
        Used -= _live[address];
        _live.Remove(address);
        Frees++;
    }
}

/// <summary>The caching allocator's buckets, reuse, statistics and out-of-memory path, on a fake device (no GPU needed).</summary>
public class CachingAllocatorTests
{
    [TestCase(1, 512)]
    [TestCase(512, 512)]
    [TestCase(513, 1024)]
    [TestCase(3000, 4096)]
    [TestCase((1 << 20) - 1, 1 << 20)]
    [TestCase((1 << 20) + 1, (1 << 20) + 512)]
    [TestCase(5_000_000, 5_000_192)]
    public void BucketsArePowersOfTwoBelowOneMiBAnd512ByteMultiplesAbove(long request, long bucket) =>
        Assert.That(CachingAllocator.BucketSize(request), Is.EqualTo(bucket));

    [Test]
    public void FreedBlocksAreReusedForTheSameBucket()
    {
        var dev = new FakeDeviceMemory(1 << 30);
        var a = new CachingAllocator(dev, "cuda:0");
        var (p1, s1) = a.Allocate(1000);
        Assert.That(s1, Is.EqualTo(1024));
        a.Free(p1);
        Assert.That(a.CachedBytes, Is.EqualTo(1024));
        var (p2, _) = a.Allocate(900);            // same 1024 bucket: the cached block comes back
        Assert.That(p2, Is.EqualTo(p1));
        Assert.That(dev.Allocs, Is.EqualTo(1));
        Assert.That(a.CacheHits, Is.EqualTo(1));
        var (p3, _) = a.Allocate(3000);           // another bucket: a new device allocation
        Assert.That(p3, Is.Not.EqualTo(p1));
        Assert.That(dev.Allocs, Is.EqualTo(2));
        Assert.That(a.InUseBytes, Is.EqualTo(1024 + 4096));
        Assert.That(a.CachedBytes, Is.Zero);
    }

    [Test]
    public void StatisticsTrackInUseCachedAndPeak()
    {
        var a = new CachingAllocator(new FakeDeviceMemory(1 << 30), "cuda:0");
        var x = a.Allocate(2048).Address;
        var y = a.Allocate(4096).Address;
        a.Free(x);
        Assert.That((a.InUseBytes, a.CachedBytes, a.PeakInUseBytes), Is.EqualTo((4096L, 2048L, 6144L)));
        a.Free(y);
        a.EmptyCache();
        Assert.That((a.InUseBytes, a.CachedBytes, a.PeakInUseBytes), Is.EqualTo((0L, 0L, 6144L)));
    }

    [Test]
    public void OutOfMemoryFreesTheCacheAndRetriesOnce()
    {
        var dev = new FakeDeviceMemory(8192);
        var a = new CachingAllocator(dev, "cuda:0");
        var p = a.Allocate(4096).Address;
        a.Free(p);                                 // 4096 cached, the device is half full
        var q = a.Allocate(8000).Address;          // bucket 8192 fails, the cache is emptied, the retry succeeds
        Assert.That(dev.FailedAllocs, Is.EqualTo(1));
        Assert.That(dev.Frees, Is.EqualTo(1));
        Assert.That(a.CachedBytes, Is.Zero);
        Assert.That(a.InUseBytes, Is.EqualTo(8192));
        a.Free(q);
    }

    [Test]
    public void OutOfMemoryAfterTheRetryNamesRequestedInUseAndCachedBytes()
    {
        var dev = new FakeDeviceMemory(8192);
        var a = new CachingAllocator(dev, "cuda:1");
        a.Allocate(4096);
        var c = a.Allocate(2048).Address;
        a.Free(c);
        var ex = Assert.Throws<DeviceOutOfMemoryException>(() => a.Allocate(5000))!;
        Assert.That(ex.Message, Does.Contain("cuda:1").And.Contain("5000 bytes").And.Contain("in use 4096 bytes").And.Contain("cached 2048 bytes"));
        Assert.That(dev.FailedAllocs, Is.EqualTo(2), "exactly one retry");
        Assert.That(a.CachedBytes, Is.Zero, "the cache was given back before the retry");
    }

    [Test]
    public void FreeingAnUnknownAddressIsAnError()
    {
        var a = new CachingAllocator(new FakeDeviceMemory(1 << 20), "cuda:0");
        var p = a.Allocate(100).Address;
        a.Free(p);
        Assert.That(() => a.Free(p), Throws.InvalidOperationException.With.Message.Contains("freed twice"));
        Assert.That(() => a.Allocate(0), Throws.TypeOf<ArgumentOutOfRangeException>());
    }
}

/// <summary>Host-side pieces of the CUDA backend that need no GPU: launch argument packing and layout coalescing.</summary>
public class CudaLaunchHostTests
{
    [Test]
    public void Strided3MatchesTheKernelStructLayout() =>
        Assert.That(Marshal.SizeOf<Strided3>(), Is.EqualTo(8 + 8 * 8 + 3 * 8 * 8), "kernels/pointwise.cu Strided3 is 264 bytes");

    [Test]
    public unsafe void Strided3MergesDimsContiguousInEveryOperand()
    {
        // x [2, 3, 4] dense and b broadcast along dim 1: dims 0 cannot merge with 1 for b, 1 and 2 can't for b either.
        var s = Strided3.Make("t", [2, 3, 4], [12, 4, 1], [4, 0, 1]);
        Assert.That(s.NDim, Is.EqualTo(3));
        var dense = Strided3.Make("t", [2, 3, 4], [12, 4, 1]);
        Assert.That(dense.NDim, Is.EqualTo(1));
        Assert.That(dense.Shape[0], Is.EqualTo(24));
        var transposed = Strided3.Make("t", [3, 2], [1, 3]);
        Assert.That((transposed.NDim, transposed.St[0], transposed.St[1]), Is.EqualTo((2, 1L, 3L)));
    }

    [Test]
    public void Strided3RefusesMoreThanEightUnmergeableDims()
    {
        var shape = Enumerable.Repeat(2, 9).ToArray();
        var strides = Enumerable.Range(0, 9).Select(i => 1 << (2 * (8 - i))).ToArray();   // gaps everywhere
        Assert.That(() => Strided3.Make("binary", shape, strides), Throws.TypeOf<NotSupportedException>().With.Message.Contains("binary"));
    }

    [Test]
    public void KernelArgsAlignEachArgumentToEightBytes()
    {
        var a = new KernelArgs().Add(1).Add(2L).Add(3f).Add(4.0);
        Assert.That(a.Count, Is.EqualTo(4));
    }

    [Test]
    public void RequestingCudaWithoutADriverNamesTheDevice()
    {
        if (MtlMoe.Engine.Backends.Cuda.CudaRuntime.IsAvailable(out _)) Assert.Ignore("a CUDA device is present; the absent-device path cannot be exercised");
        var ex = Assert.Throws<DeviceUnavailableException>(() => MtlMoe.Engine.Backends.BackendRegistry.Get(Device.Cuda(3)))!;
        Assert.That(ex.Message, Does.Contain("cuda:3").And.Contain("CUDA is unavailable"));
    }
}
