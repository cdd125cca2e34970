using System.Text.RegularExpressions;
using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Tests.Cuda;

/// <summary>
/// Every kernel the CUDA backend launches exists in the embedded PTX module it is launched from — checked on the
/// CPU by reading the backend's source, so a typo in a kernel or module name fails here rather than on a GPU.
/// </summary>
public partial class CudaKernelNameTests
{
    static HashSet<string> Entries(string module) => PtxImages.EntryPoints(PtxImages.Get(module)).ToHashSet();

    static string BackendSource()
    {
        var kernels = CudaTestEnv.RequireKernelsDir();
        var dir = Path.Combine(Path.GetDirectoryName(kernels)!, "engine", "Backends", "Cuda");
        if (!Directory.Exists(dir)) Assert.Ignore("engine/Backends/Cuda sources not found next to kernels/");
        return string.Join("\n", Directory.GetFiles(dir, "*.cs").Select(File.ReadAllText));
    }

    [Test]
    public void LiteralAndDtypeSuffixedLaunchesNameEmbeddedKernels()
    {
        var src = BackendSource();
        var missing = new List<string>();
        int checkedCount = 0;
        foreach (Match m in LaunchLiteral().Matches(src))
        {
            string module = m.Groups[1].Value, name = m.Groups[2].Value;
            bool suffixed = m.Groups[3].Success;
            var entries = Entries(module);
            // Families with double kernels (the backend allows float64 there) and the integer pointwise ones.
            string[] dtypes = !suffixed ? [""]
                : module == "pointwise" ? ["f32", "f64", "i32", "i64"]
                : module is "index" or "norm" or "optim" or "pool" or "reduce" ? ["f32", "f64"]
                : ["f32"];
            foreach (var d in dtypes)
            {
                checkedCount++;
                if (!entries.Contains(name + d)) missing.Add($"{module}/{name}{d}");
            }
        }
        Assert.That(checkedCount, Is.GreaterThan(40), "the launch pattern no longer matches the backend's source");
        Assert.That(missing, Is.Empty);
    }

    [Test]
    public void ComputedKernelNamesAreEmbedded()
    {
        string[] dt = ["f32", "f64", "i32", "i64"];
        var pointwise = Entries("pointwise");
        var reduce = Entries("reduce");
        var need = new List<string>();
        foreach (var from in dt) foreach (var to in dt) if (from != to) need.Add($"cast_{from}_{to}");
        need.AddRange(["copy_into_i32", "copy_into_i64", "fill_strided_i32", "fill_strided_i64"]);
        Assert.That(need.Where(n => !pointwise.Contains(n)), Is.Empty, "pointwise");
        var red = from op in new[] { "sum", "max", "min", "argmax", "argmin" }
                  from rows in new[] { "_", "_rows_" }
                  from d in new[] { "f32", "f64" }
                  select op + rows + d;
        Assert.That(red.Where(n => !reduce.Contains(n)), Is.Empty, "reduce");
    }

    // Launch("module", "name_" + Sfx(...)  or  Launch("module", "name"
    [GeneratedRegex(@"Launch\(""(\w+)"",\s*""(\w+)""(\s*\+\s*Sfx\()?")]
    private static partial Regex LaunchLiteral();
}
