using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>The spinning worker team behind the CPU kernels' parallel regions: coverage, errors, nesting, concurrency.</summary>
public class WorkerTeamTests
{
    // The team itself is under test, whatever MTLMOE_TEAM says.
    private static readonly CpuBackendOptions TeamOn = CpuBackendOptions.Defaults;

    [Test]
    public void RunsEveryItemExactlyOnce()
    {
        foreach (int threads in new[] { 1, 2, 3, 4 })
            foreach (int count in new[] { 0, 1, 2, 3, 7, 64, 1000 })
            {
                var hits = new int[count];
                WorkerTeam.For(TeamOn, count, threads, i => Interlocked.Increment(ref hits[i]));
                Assert.That(hits, Is.All.EqualTo(1), $"{count} items on {threads} threads");
            }
    }

    // Serial: it needs the process's one team free (another test's region would send this one to Parallel.For) and a
    // second core idle enough for a helper to take an item.
    [Test, NonParallelizable]
    public void UsesMoreThanOneThreadWhenAsked()
    {
        if (Environment.ProcessorCount < 2) Assert.Ignore("one core: a helper may never get to run");
        var ids = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        // Items long enough that the caller cannot finish them all before a spinning or woken helper joins.
        WorkerTeam.For(TeamOn, 32, 2, _ => { ids[Environment.CurrentManagedThreadId] = true; Thread.Sleep(5); });
        Assert.That(ids.Count, Is.EqualTo(2));
    }

    [Test]
    public void AnItemsExceptionReachesTheCallerAfterTheOthersRan()
    {
        int done = 0;
        var ex = Assert.Throws<InvalidOperationException>(() => WorkerTeam.For(TeamOn, 50, 2, i =>
        {
            if (i == 17) throw new InvalidOperationException("item 17");
            Interlocked.Increment(ref done);
        }));
        Assert.That(ex!.Message, Is.EqualTo("item 17"));
        Assert.That(done, Is.EqualTo(49));
        // the team is usable afterwards
        int after = 0;
        WorkerTeam.For(TeamOn, 10, 2, _ => Interlocked.Increment(ref after));
        Assert.That(after, Is.EqualTo(10));
    }

    [Test]
    public void NestedRegionsRunInline()
    {
        var hits = new int[8 * 8];
        WorkerTeam.For(TeamOn, 8, 2, i => WorkerTeam.For(TeamOn, 8, 2, j => Interlocked.Increment(ref hits[i * 8 + j])));
        Assert.That(hits, Is.All.EqualTo(1));
    }

    [Test]
    public void ConcurrentCallersAllFinish()
    {
        var totals = new long[6];
        var callers = Enumerable.Range(0, totals.Length).Select(c => new Thread(() =>
        {
            for (int round = 0; round < 200; round++)
                WorkerTeam.For(TeamOn, 10, 2, i => Interlocked.Add(ref totals[c], i + 1));
        })).ToArray();
        foreach (var t in callers) t.Start();
        foreach (var t in callers) t.Join();
        Assert.That(totals, Is.All.EqualTo(200L * 55));
    }

    [Test]
    public void WithTheTeamOffParallelForRunsTheItemsUnderTheSameErrorContract()
    {
        var teamOff = CpuBackendOptions.Defaults.Disable("worker-team");
        var hits = new int[100];
        WorkerTeam.For(teamOff, 100, 2, i => Interlocked.Increment(ref hits[i]));
        Assert.That(hits, Is.All.EqualTo(1));
        var ex = Assert.Throws<ArgumentException>(() => WorkerTeam.For(teamOff, 20, 2, i => { if (i == 3) throw new ArgumentException("item 3"); }));
        Assert.That(ex!.Message, Is.EqualTo("item 3"));
    }
}
