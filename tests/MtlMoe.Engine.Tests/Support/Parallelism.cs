// Fixtures run in parallel, two at a time (this machine and CI have two cores). Every test that changes how the CPU
// computes builds its own backend (Support/Cpu.cs) instead of flipping a process-wide switch; the few tests that read
// genuinely process-wide state (the live-tensor counters, the worker team's idle helpers, the CUDA context) are marked
// [NonParallelizable] where they stand, with the reason.
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(2)]
