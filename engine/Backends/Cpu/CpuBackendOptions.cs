namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// The settings of one <see cref="CpuBackend"/>: its thread count and worker spin time, the code paths it must not take
/// (conv algorithms of the table and kernels' fast paths, by name: <see cref="Paths"/>) and the thresholds its conv
/// algorithm table and schedules decide by. Immutable: derive a variant with <c>with</c> or <see cref="Disable"/> and
/// build a backend from it (<c>new CpuBackend(options)</c>); the process's default backend takes
/// <see cref="FromEnvironment"/>. A backend reads its options once per call, never per element.
/// Every value here gives the same results bit for bit for any thread count; switching paths off or moving thresholds
/// changes which code runs (and may change the order of float sums), never what is computed.
/// </summary>
public sealed record CpuBackendOptions
{
    private readonly int _threads = Environment.ProcessorCount;
    private readonly int _spin = 2000;
    private readonly IReadOnlySet<string> _disabled = new HashSet<string>();
    private readonly CpuPath _off;
    private readonly int _convTargetCols = 2048;
    private readonly int _convMaxColElements = 1 << 22;
    private readonly int _convTileElements = 1 << 17;
    private readonly double _implicitMinLaneUse = 0.7;
    private readonly double _implicitPackedBelow = 0.9;

    /// <summary>Worker threads per call (default: all cores). Results are identical for any value.</summary>
    public int Threads
    {
        get => _threads;
        init => _threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Threads), value, "cpu options: at least one thread");
    }

    /// <summary>
    /// How long an idle helper of the worker team spins before it blocks, in µs (default 2000, about the longest gap
    /// between the parallel regions of a training step; <c>MTLMOE_SPIN_US</c>).
    /// </summary>
    public int SpinMicroseconds
    {
        get => _spin;
        init => _spin = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(SpinMicroseconds), value, "cpu options: spin time must be ≥ 0 µs");
    }

    /// <summary>
    /// Names of the paths this backend must not take (see <see cref="Paths"/>; empty by default). An unknown name is an
    /// <see cref="ArgumentException"/> that lists the known ones.
    /// </summary>
    public IReadOnlySet<string> Disabled
    {
        get => _disabled;
        init
        {
            var set = new HashSet<string>(value, StringComparer.Ordinal);
            var off = CpuPath.None;
            foreach (var name in set) off |= CpuPaths.Parse(name);
            _disabled = set;
            _off = off;
        }
    }

    /// <summary>GEMM column count (images·Ho·Wo) a chunk of the unfold + GEMM conv aims for (default 2048).</summary>
    public int ConvTargetCols
    {
        get => _convTargetCols;
        init => _convTargetCols = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(ConvTargetCols), value, "cpu options: ConvTargetCols must be at least 1");
    }

    /// <summary>Upper bound on one chunk's column scratch, in elements (default 2²², 16 MiB of float32).</summary>
    public int ConvMaxColElements
    {
        get => _convMaxColElements;
        init => _convMaxColElements = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(ConvMaxColElements), value, "cpu options: ConvMaxColElements must be at least 1");
    }

    /// <summary>Elements of one thread's column tile in the tiled-bands conv (default 2¹⁷, 512 KiB of float32).</summary>
    public int ConvTileElements
    {
        get => _convTileElements;
        init => _convTileElements = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(ConvTileElements), value, "cpu options: ConvTileElements must be at least 1");
    }

    /// <summary>
    /// Smallest output plane (Ho·Wo) the tiled-bands conv takes (default 192). At 14² (196 outputs) tiles measured
    /// 1.1–1.7× faster than batching images into one GEMM; at 7² batching won by 1.0–1.4× on the 3×3 convs.
    /// </summary>
    public int ConvTiledMinPlane { get; init; } = 192;

    /// <summary>
    /// Smallest share of a plane's 16-lane chunk positions that are outputs for the implicit GEMMs to take it
    /// (default 0.7; 28²: 1, 14²: 0.94, 7²: 0.77, 3²: 0.56): below it the padded lanes cost more than the unfold saves.
    /// </summary>
    public double ImplicitMinLaneUse
    {
        get => _implicitMinLaneUse;
        init => _implicitMinLaneUse = value is >= 0 and <= 1 ? value : throw new ArgumentOutOfRangeException(nameof(ImplicitMinLaneUse), value, "cpu options: ImplicitMinLaneUse is a share, 0 to 1");
    }

    /// <summary>
    /// Planes of 16+ positions whose lane use is below this lay the implicit GEMM's chunks end to end over the images
    /// (default 0.9: 7² at 0.77 does, 14² at 0.94 does not). Switched off altogether by "implicit-packed-chunks".
    /// </summary>
    public double ImplicitPackedBelow
    {
        get => _implicitPackedBelow;
        init => _implicitPackedBelow = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(ImplicitPackedBelow), value, "cpu options: ImplicitPackedBelow must be at least 0");
    }

    /// <summary>
    /// Fewest output positions per image the blocked backward-weights takes (default 7² = 49: at 4² the unfold's GEMM
    /// was as fast or faster).
    /// </summary>
    public int BlockedWeightsMinOutPlane { get; init; } = 7 * 7;

    /// <summary>
    /// Whether the 1×1 stride-2 GEMM takes backward-weights wherever it applies (default false: only where the planes
    /// lie side by side, 14² → 7² in ResNet; tests turn it on to reach it on other shapes).
    /// </summary>
    public bool PointwiseStride2WeightsEverywhere { get; init; }

    /// <summary>Forces a GEMM micro-kernel family (tests, Bench's <c>gemm --path</c>); null picks the best the CPU supports.</summary>
    public GemmPath? GemmKernel { get; init; }

    /// <summary>The code defaults, without reading the environment.</summary>
    public static CpuBackendOptions Defaults { get; } = new();

    /// <summary>The switchable paths: every conv algorithm of the table (but its last row, unfold + GEMM) and every fast path.</summary>
    public static IReadOnlyList<CpuPathInfo> Paths { get; } = CpuPaths.All.Select(a => a.Info).ToArray();

    /// <summary>
    /// The defaults with the <c>MTLMOE_*</c> environment variables applied (read once per process, see
    /// <see cref="EnvironmentVariables"/>): MTLMOE_IMPLICIT=0, MTLMOE_TEAM=0, MTLMOE_SPIN_US, MTLMOE_CPU_DISABLE.
    /// </summary>
    public static CpuBackendOptions FromEnvironment()
    {
        var o = new CpuBackendOptions();
        var off = new List<string>();
        if (EnvironmentVariables.ImplicitOff)
            off.AddRange(["implicit-gemm", "implicit-gemm-stride2", "implicit-gemm-stride2-backward-data", "pointwise-stride2-gemm", "blocked-backward-weights"]);
        if (EnvironmentVariables.TeamOff) off.Add("worker-team");
        foreach (var name in EnvironmentVariables.CpuDisable)
        {
            try { CpuPaths.Parse(name); }
            catch (ArgumentException e) { throw new ArgumentException($"{EnvironmentVariables.CpuDisableList}: {e.Message}", e); }
            off.Add(name);
        }
        if (off.Count > 0) o = o.Disable([.. off]);
        if (EnvironmentVariables.SpinMicroseconds is int us) o = o with { SpinMicroseconds = us };
        return o;
    }

    /// <summary>These options with <paramref name="names"/> added to <see cref="Disabled"/>.</summary>
    public CpuBackendOptions Disable(params string[] names) => this with { Disabled = new HashSet<string>(_disabled.Concat(names), StringComparer.Ordinal) };

    /// <summary>These options with <paramref name="names"/> taken out of <see cref="Disabled"/>.</summary>
    public CpuBackendOptions Enable(params string[] names)
    {
        foreach (var n in names) CpuPaths.Parse(n);
        return this with { Disabled = new HashSet<string>(_disabled.Except(names), StringComparer.Ordinal) };
    }

    /// <summary>Whether the path called <paramref name="name"/> may be taken.</summary>
    public bool IsEnabled(string name) => On(CpuPaths.Parse(name));

    /// <summary>Whether every path in <paramref name="path"/> may be taken (a bit test: cheap enough for any call).</summary>
    internal bool On(CpuPath path) => (_off & path) == 0;

    /// <summary>"threads 2, spin 2000 µs, disabled [tiled-bands]" plus any threshold that differs from the default.</summary>
    public override string ToString()
    {
        var parts = new List<string> { $"threads {Threads}", $"spin {SpinMicroseconds} µs", $"disabled [{string.Join(", ", _disabled.Order(StringComparer.Ordinal))}]" };
        var d = Defaults;
        if (ConvTargetCols != d.ConvTargetCols) parts.Add($"conv target cols {ConvTargetCols}");
        if (ConvMaxColElements != d.ConvMaxColElements) parts.Add($"conv max col elements {ConvMaxColElements}");
        if (ConvTileElements != d.ConvTileElements) parts.Add($"conv tile elements {ConvTileElements}");
        if (ConvTiledMinPlane != d.ConvTiledMinPlane) parts.Add($"tiled min plane {ConvTiledMinPlane}");
        if (ImplicitMinLaneUse != d.ImplicitMinLaneUse) parts.Add($"implicit min lane use {ImplicitMinLaneUse}");
        if (ImplicitPackedBelow != d.ImplicitPackedBelow) parts.Add($"implicit packed below {ImplicitPackedBelow}");
        if (BlockedWeightsMinOutPlane != d.BlockedWeightsMinOutPlane) parts.Add($"blocked weights min plane {BlockedWeightsMinOutPlane}");
        if (PointwiseStride2WeightsEverywhere) parts.Add("pointwise-stride2 weights everywhere");
        if (GemmKernel is { } k) parts.Add($"gemm kernel {k}");
        return string.Join(", ", parts);
    }
}
