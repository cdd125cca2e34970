namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>Switches between GEMM driver schedules, for tests and the bench's in-process A/B (<c>--ab</c>).</summary>
internal static class GemmSchedule
{
    /// <summary>
    /// With a caller-packed B, parallel items own whole-K blocks of C and never wait for each other (on by default);
    /// off, they share the per-KC-step schedule of the plain GEMM, with two barriers per step.
    /// </summary>
    public static bool PackedBlocksAlone { get; set; } = true;
}
