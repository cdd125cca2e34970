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
            if (!suffixed && !m.Groups[4].Success) continue;   // "name_" + something else: ComputedKernelNamesAreEmbedded
            var entries = Entries(module);
            // The dtypes the backend launches each suffixed kernel with (bf16 wherever a bf16 kernel touches activations).
            string[] dtypes = !suffixed ? [""]
                : module == "pointwise" ? name == "relu_backward_" ? ["f32", "bf16"] : ["f32", "f64", "i32", "i64", "bf16"]
                : module is "index" or "optim" ? ["f32", "f64"]
                : module == "pool" ? name == "maxpool2d_backward_" ? ["f32", "f64"] : ["f32", "f64", "bf16"]
                : module == "moe_dispatch" ? ["f32", "bf16"]
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
        string[] dt = ["f32", "f64", "i32", "i64", "bf16"];
        var need = new Dictionary<string, List<string>>();
        void Need(string module, string name) { if (!need.TryGetValue(module, out var l)) need[module] = l = new(); l.Add(name); }
        foreach (var from in dt) foreach (var to in dt) if (from != to) Need("pointwise", $"cast_{from}_{to}");
        foreach (var n in new[] { "copy_into_i32", "copy_into_i64", "copy_into_bf16", "fill_strided_i32", "fill_strided_i64", "fill_strided_bf16" }) Need("pointwise", n);
        foreach (var op in new[] { "sum", "max", "min", "argmax", "argmin" })
            foreach (var rows in new[] { "_", "_rows_" })
                foreach (var d in new[] { "f32", "f64", "bf16" }) Need("reduce", op + rows + d);
        foreach (var op in new[] { "sum", "max", "min" }) foreach (var d in new[] { "f32", "f64", "bf16" }) Need("reduce", $"{op}_chunks_{d}");
        foreach (var n in new[] { "softmax_", "log_softmax_" }) foreach (var d in new[] { "f32", "bf16" }) Need("softmax", n + d);
        // Batch norm: "bn_…_" + (channels-last ? "nhwc_" : "") + dtype.
        foreach (var n in new[] { "bn_stats_", "bn_relu_forward_", "bn_relu_infer_", "bn_relu_backward_reduce_", "bn_relu_backward_dx_" })
            foreach (var d in new[] { "f32", "f64", "bf16", "nhwc_f32", "nhwc_bf16" }) Need("norm", n + d);
        foreach (var d in new[] { "f32", "bf16", "nhwc_f32", "nhwc_bf16" }) Need("norm", "bn_add_relu_forward_" + d);
        // Layout edges: dense casts and channels-last transposes.
        foreach (var n in new[] { "cast_dense_f32_bf16", "cast_dense_bf16_f32", "nchw_to_nhwc_f32", "nhwc_to_nchw_f32", "nchw_to_nhwc_bf16", "nhwc_to_nchw_bf16" })
            Need("layout", n);
        // The fused gating pass: the k ≤ 2 pair and the general one.
        foreach (var n in new[] { "moe_gating_fused_k2_f32", "moe_gating_fused_f32", "moe_gating_fused_backward_k2_f32", "moe_gating_fused_backward_f32" })
            Need("moe_gating", n);
        foreach (var (module, names) in need)
        {
            var entries = Entries(module);
            Assert.That(names.Where(n => !entries.Contains(n)), Is.Empty, module);
        }
    }

    // Launch("module", "name_" + Sfx(...)  or  Launch("module", "name", …  (a literal name ends at a comma or parenthesis)
    [GeneratedRegex(@"Launch\(""(\w+)"",\s*""(\w+)""(\s*\+\s*Sfx\()?(\s*[,)])?")]
    private static partial Regex LaunchLiteral();
}
