using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Tests.Core;

/// <summary>A flow's own backend (<see cref="BackendRegistry.Use"/>): scoped, nested, seen by the tasks the flow starts, not by others.</summary>
public class BackendRegistryTests
{
    private static CpuBackend CurrentCpu => (CpuBackend)BackendRegistry.Get(Device.Cpu);

    [Test]
    public void UseInstallsTheBackendUntilTheScopeEnds()
    {
        var before = CurrentCpu;
        var mine = new CpuBackend(CpuBackendOptions.Defaults with { Threads = 1 });
        using (BackendRegistry.Use(mine))
        {
            Assert.That(CurrentCpu, Is.SameAs(mine));
            using var t = Tensor.Zeros([3]);
            Assert.That(t.Backend, Is.SameAs(mine), "a tensor's ops go to the flow's backend");
            var inner = new CpuBackend();
            using (BackendRegistry.Use(inner)) Assert.That(CurrentCpu, Is.SameAs(inner), "scopes nest");
            Assert.That(CurrentCpu, Is.SameAs(mine), "the inner scope ended");
        }
        Assert.That(CurrentCpu, Is.SameAs(before));
    }

    [Test]
    public void TasksAndThreadsTheFlowStartsSeeItsBackend()
    {
        var mine = new CpuBackend(CpuBackendOptions.Defaults with { Threads = 1 });
        using (BackendRegistry.Use(mine))
        {
            Assert.That(Task.Run(() => CurrentCpu).Result, Is.SameAs(mine), "a task");
            CpuBackend? seen = null;
            var thread = new Thread(() => seen = CurrentCpu);
            thread.Start(); thread.Join();
            Assert.That(seen, Is.SameAs(mine), "a thread");
        }
    }

    [Test]
    public void ParallelFlowsEachSeeTheirOwn()
    {
        var a = new CpuBackend(CpuBackendOptions.Defaults with { Threads = 1 });
        var b = new CpuBackend(CpuBackendOptions.Defaults with { Threads = 2 });
        using var ready = new Barrier(2);
        CpuBackend? seenA = null, seenB = null;
        void Flow(CpuBackend mine, Action<CpuBackend> report)
        {
            using (BackendRegistry.Use(mine))
            {
                ready.SignalAndWait(); // both installed before either looks
                report(CurrentCpu);
            }
        }
        var ta = Task.Run(() => Flow(a, s => seenA = s));
        var tb = Task.Run(() => Flow(b, s => seenB = s));
        Task.WaitAll(ta, tb);
        Assert.That(seenA, Is.SameAs(a));
        Assert.That(seenB, Is.SameAs(b));
    }

    // What a command's set-up does (tools/Train RunSetup.ApplyThreads): a backend installed in a method that returns
    // without disposing the scope stays installed for the rest of its caller's flow.
    [Test]
    public void AnUndisposedScopeLastsForTheCallersFlow()
    {
        var mine = new CpuBackend(CpuBackendOptions.Defaults with { Threads = 1 });
        Task.Run(() =>
        {
            static void Install(CpuBackend backend) => BackendRegistry.Use(backend);
            Install(mine);
            Assert.That(CurrentCpu, Is.SameAs(mine));
        }).Wait();
        Assert.That(CurrentCpu, Is.Not.SameAs(mine), "the task's flow ended with it");
    }

    [Test]
    public void OptionsNameUnknownPathsAndBadValues()
    {
        var ex = Assert.Throws<ArgumentException>(() => CpuBackendOptions.Defaults.Disable("implicit-gem"));
        Assert.That(ex!.Message, Does.Contain("implicit-gem").And.Contain("implicit-gemm-stride2-backward-data"));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = CpuBackendOptions.Defaults with { Threads = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = CpuBackendOptions.Defaults with { SpinMicroseconds = -1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = CpuBackendOptions.Defaults with { ConvTargetCols = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = CpuBackendOptions.Defaults with { ConvTileElements = 0 });
        var share = Assert.Throws<ArgumentOutOfRangeException>(() => _ = CpuBackendOptions.Defaults with { ImplicitMinLaneUse = 1.5 });
        Assert.That(share!.Message, Does.Contain("ImplicitMinLaneUse"));
        var o = CpuBackendOptions.Defaults.Disable("tiled-bands");
        Assert.That(o.IsEnabled("tiled-bands"), Is.False);
        Assert.That(o.Enable("tiled-bands").IsEnabled("tiled-bands"), Is.True);
        Assert.That(CpuBackendOptions.Defaults.IsEnabled("tiled-bands"), Is.True, "options are immutable: Disable made a copy");
    }
}
