using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine;
using MtlMoe.Engine.Backends;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Conv;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>
/// The conv algorithm table chooses, for every plan of <see cref="ConvPlanCatalog"/> (every conv of ResNet-18/34/50 at
/// 112²–448² inputs and batch 1/16/32, plus odd shapes), pass and dtype, exactly the path main (6716480) took before the
/// table existed, under main's default settings and under fourteen single-switch settings: the expectations in
/// ConvAlgorithmTable.old-choices.tsv were recorded from main's own dispatch code (see the .generator.md beside it).
/// </summary>
public class ConvAlgorithmTableTests
{
    // Each column of the expectations: main's switch, as options of this build.
    private static readonly Dictionary<string, Func<CpuBackendOptions, CpuBackendOptions>> Settings = new()
    {
        ["default"] = o => o,
        ["env-implicit-0"] = o => o.Disable("implicit-gemm", "implicit-gemm-stride2", "implicit-gemm-stride2-backward-data", "pointwise-stride2-gemm", "blocked-backward-weights"),
        ["implicit-off"] = o => o.Disable("implicit-gemm", "implicit-gemm-stride2", "implicit-gemm-stride2-backward-data", "pointwise-stride2-gemm"),
        ["implicit2-off"] = o => o.Disable("implicit-gemm-stride2"),
        ["implicit2bd-off"] = o => o.Disable("implicit-gemm-stride2-backward-data"),
        ["pointwise2-off"] = o => o.Disable("pointwise-stride2-gemm"),
        ["weightgrad-off"] = o => o.Disable("blocked-backward-weights"),
        ["strided1x1-off"] = o => o.Disable("tiled-strided-1x1-backward-data"),
        ["tiled-off"] = o => o with { ConvTiledMinPlane = int.MaxValue },
        ["packed-off"] = o => o.Disable("implicit-packed-chunks"),
        ["pointwise2-weights-everywhere"] = o => o with { PointwiseStride2WeightsEverywhere = true },
        ["flip-forward-off"] = o => o.Disable("backward-data-as-forward"),
        ["min-lane-use-0.9"] = o => o with { ImplicitMinLaneUse = 0.9 },
        ["tiled-min-plane-64"] = o => o with { ConvTiledMinPlane = 64 },
        ["weightgrad-min-plane-16"] = o => o with { BlockedWeightsMinOutPlane = 16 },
    };

    private static readonly Dictionary<string, string> Codes = new()
    {
        ["implicit-gemm"] = "I", ["implicit-gemm-stride2"] = "S", ["implicit-gemm-stride2-backward-data"] = "D",
        ["pointwise-stride2-gemm"] = "P", ["blocked-backward-weights"] = "B", ["tiled-bands"] = "T", ["unfold-gemm"] = "U",
    };

    private static (string[] Columns, Dictionary<string, string[]> Rows) Expected()
    {
        using var stream = typeof(ConvAlgorithmTableTests).Assembly.GetManifestResourceStream("ConvAlgorithmTable.old-choices.tsv")
            ?? throw new InvalidOperationException("the expectations are not embedded in the test assembly");
        using var reader = new StreamReader(stream);
        string[]? columns = null;
        var rows = new Dictionary<string, string[]>();
        for (string? line; (line = reader.ReadLine()) is not null;)
        {
            if (line.StartsWith('#') || line.Length == 0) continue;
            var cells = line.Split('\t');
            if (columns is null) { columns = cells; continue; }
            rows.Add(cells[0], cells);
        }
        return (columns!, rows);
    }

    // The code for one pass: what the table chooses, as the expectations spell it.
    private static string Choice(ConvCase c, ConvPass pass, DType dtype, CpuBackendOptions o)
    {
        var p = new ConvPlan(c.XShape, c.WShape, c.Geo, dtype, o);
        if (p.N == 0 || p.OutPlane == 0) return "E";
        var choice = ConvAlgorithms.Choose(p, pass);
        return (choice.ViaForward ? "F" : "") + Codes[choice.Algorithm.Name];
    }

    private static string Three(ConvCase c, DType dtype, CpuBackendOptions o) =>
        string.Join(",", new[] { ConvPass.Forward, ConvPass.BackwardData, ConvPass.BackwardWeights }.Select(pass => Choice(c, pass, dtype, o)));

    [Test]
    public void TheCatalogIsTheOneTheExpectationsWereRecordedFor()
    {
        var (_, rows) = Expected();
        var keys = ConvPlanCatalog.All().Select(c => c.Key).ToArray();
        Assert.That(keys, Has.Length.EqualTo(403));
        Assert.That(keys, Is.EquivalentTo(rows.Keys));
    }

    [Test]
    public void EveryPlanPassAndSettingTakesMainsPath()
    {
        if (!Avx512F.IsSupported) Assert.Ignore("the expectations were recorded on an AVX-512 machine; without it the implicit family never applies");
        var (columns, rows) = Expected();
        Assert.That(columns[1], Is.EqualTo("float64"));
        Assert.That(columns.Skip(2), Is.EquivalentTo(Settings.Keys), "a setting column without its mapping");
        var mismatches = new List<string>();
        int checkedCells = 0;
        foreach (var c in ConvPlanCatalog.All())
        {
            var row = rows[c.Key];
            string f64 = Three(c, DType.Float64, CpuBackendOptions.Defaults);
            checkedCells++;
            if (f64 != row[1]) mismatches.Add($"{c.Key} float64: {f64}, main {row[1]}");
            for (int col = 2; col < columns.Length; col++)
            {
                string got = Three(c, DType.Float32, Settings[columns[col]](CpuBackendOptions.Defaults));
                checkedCells++;
                if (got != row[col]) mismatches.Add($"{c.Key} {columns[col]}: {got}, main {row[col]}");
            }
        }
        Assert.That(checkedCells, Is.EqualTo(403 * 16));
        Assert.That(mismatches, Is.Empty, $"{mismatches.Count} of {checkedCells} cells differ from main");
    }
}
