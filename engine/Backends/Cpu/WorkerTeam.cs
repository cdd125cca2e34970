using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// The CPU kernels' parallel loop: a team of helper threads that spin for a short while after each parallel region
/// before they block, as OpenMP runtimes do. A training step opens hundreds of regions of 0.1–2 ms each; the thread
/// pool's workers fall asleep between them, and waking one measured 20–700 µs on this kind of 2-core VM, so with
/// Parallel.For a region of 100 µs usually ran serially. A spinning helper joins in about a microsecond.
/// Items are handed out dynamically; every caller already makes its result independent of which thread runs which
/// item. Calls from a helper (nested regions) run inline; a call while another thread holds the team (tests run
/// in parallel, the data loader) falls back to Parallel.For. The team is one per process (its threads are a process
/// resource); each call brings its backend's options: whether to use the team at all ("worker-team"; MTLMOE_TEAM=0) and
/// how long its helpers spin after this region before they block (SpinMicroseconds; MTLMOE_SPIN_US, default 2000 µs,
/// about the longest gap between the regions of a step; the spin yields its core to any other runnable thread now
/// and then).
/// </summary>
internal static class WorkerTeam
{
    private sealed class Job(int count, int helpers, int spinMicroseconds, Action<int> body)
    {
        public readonly int Count = count, Helpers = helpers, SpinMicroseconds = spinMicroseconds;
        public readonly Action<int> Body = body;
        public int Next, Completed;
        public Exception? Error;

        // Claims and runs items until none are left; an item that throws still counts as completed.
        public void Drain()
        {
            int i;
            while ((i = Interlocked.Increment(ref Next) - 1) < Count)
            {
                try { Body(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref Error, e, null); }
                Interlocked.Increment(ref Completed);
            }
        }
    }

    private sealed class Helper
    {
        public readonly int Index;
        public readonly SemaphoreSlim Wake = new(0);
        public int Sleeping; // 1 while blocked (or about to block) on Wake

        public Helper(int index)
        {
            Index = index;
            // Started without the caller's execution context: a helper outlives the call (and the test, or the backend
            // scope, that started it), and runs nothing but region bodies.
            using (ExecutionContext.SuppressFlow())
                new Thread(Loop) { IsBackground = true, Name = $"mtlmoe-cpu-{index + 1}" }.Start();
        }

        private void Loop()
        {
            _inTeam = true;
            Job? seen = null;
            int spinUs = 0; // the spin time of the last job seen
            while (true)
            {
                long idleSince = Stopwatch.GetTimestamp();
                Job? job;
                for (int spins = 0; (job = _job) == seen; spins++)
                {
                    if (Stopwatch.GetElapsedTime(idleSince).TotalMicroseconds < spinUs)
                    {
                        // Mostly a pure spin; every 16th turn gives the core to any other runnable thread (another
                        // process, the data loader), so an idle helper only burns time nobody else wants.
                        if ((spins & 15) == 15) Thread.Yield();
                        else Thread.SpinWait(30);
                        continue;
                    }
                    // Publish "sleeping" with a full fence, then look once more: a caller that set a new job before
                    // this saw the flag clear and skipped the wake-up, so the job is seen here instead.
                    Interlocked.Exchange(ref Sleeping, 1);
                    if (_job == seen) Wake.Wait(50); // the time-out only bounds a wake-up lost to a race
                    Interlocked.Exchange(ref Sleeping, 0);
                    idleSince = Stopwatch.GetTimestamp();
                }
                seen = job;
                if (job is not null) spinUs = job.SpinMicroseconds;
                if (job is not null && Index < job.Helpers) job.Drain();
            }
        }
    }

    private static readonly object Gate = new();
    private static Helper[] _helpers = [];
    private static volatile Job? _job;
    [ThreadStatic] private static bool _inTeam;

    /// <summary>
    /// Runs body(0) … body(count − 1) on up to <paramref name="threads"/> threads (the caller is one of them), on the team
    /// unless <paramref name="options"/> switch it off.
    /// </summary>
    public static void For(CpuBackendOptions options, int count, int threads, Action<int> body)
    {
        if (count <= 0) return;
        if (threads <= 1 || count == 1 || _inTeam)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        if (!options.On(CpuPath.WorkerTeam) || !Monitor.TryEnter(Gate))
        {
            // Same error contract as the team: the first item's exception itself, not an AggregateException.
            try { Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body); }
            catch (AggregateException ae) when (ae.InnerExceptions.Count > 0) { ExceptionDispatchInfo.Capture(ae.InnerExceptions[0]).Throw(); }
            return;
        }
        try
        {
            _inTeam = true;
            int helpers = Math.Min(threads, count) - 1;
            if (_helpers.Length < helpers)
            {
                var grown = new Helper[helpers];
                Array.Copy(_helpers, grown, _helpers.Length);
                for (int h = _helpers.Length; h < helpers; h++) grown[h] = new Helper(h);
                _helpers = grown;
            }
            var job = new Job(count, helpers, options.SpinMicroseconds, body);
            _job = job; // volatile write: the job is complete before a helper can see it
            Interlocked.MemoryBarrier();
            for (int h = 0; h < helpers; h++)
                if (Volatile.Read(ref _helpers[h].Sleeping) == 1) _helpers[h].Wake.Release();
            job.Drain();
            // Every item is claimed now; wait for the ones a helper is still running.
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Completed) < count) spin.SpinOnce(sleep1Threshold: -1);
            if (job.Error is { } e) ExceptionDispatchInfo.Capture(e).Throw();
        }
        finally
        {
            // Drop the finished job, so that its closure (and the arrays it captured) is not kept alive until the next
            // region; a helper sees the change, finds no job and goes back to waiting.
            _job = null;
            _inTeam = false;
            Monitor.Exit(Gate);
        }
    }
}
