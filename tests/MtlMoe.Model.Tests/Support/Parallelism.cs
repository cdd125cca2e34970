using NUnit.Framework;

// Fixtures run in parallel on the two cores: every test builds its own backend flow (BackendRegistry.Use), its own
// temporary folders and run folders. Tests that swap the process's Console writers to capture the training
// progress stay [NonParallelizable] where they stand, with the reason.
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(2)]
