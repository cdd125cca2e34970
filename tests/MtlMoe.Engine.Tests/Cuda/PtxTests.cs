using System.Text.RegularExpressions;
using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Tests.Cuda;

/// <summary>The committed PTX is embedded, matches its sources, and declares what the sources define.</summary>
[Category("Cuda")]
public partial class PtxTests
{
    [Test]
    public void EveryCommittedPtxIsEmbeddedVerbatim()
    {
        var kernels = CudaTestEnv.RequireKernelsDir();
        var files = Directory.GetFiles(Path.Combine(kernels, "ptx"), "*.ptx").Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal).ToArray();
        Assert.That(files, Is.Not.Empty);
        Assert.That(PtxImages.Modules, Is.EquivalentTo(files));
        foreach (var m in files)
            Assert.That(PtxImages.Get(m), Is.EqualTo(File.ReadAllText(Path.Combine(kernels, "ptx", m + ".ptx"))), m);
    }

    [Test]
    public void EverySourceHasAPtx()
    {
        var kernels = CudaTestEnv.RequireKernelsDir();
        foreach (var cu in Directory.GetFiles(kernels, "*.cu"))
            Assert.That(PtxImages.Modules, Does.Contain(Path.GetFileNameWithoutExtension(cu)), $"{Path.GetFileName(cu)} has no embedded PTX: run kernels/build-ptx.sh");
    }

    [Test]
    public void RequiredKernelsAreEmbedded()
    {
        // The pointwise family the CUDA backend launches for every element-wise op, copy, cast and fill, then the others.
        string[] required = ["unary_f32", "unary_f64", "binary_f32", "binary_i64", "where_f32", "cast_f32_i64", "copy_into_i32", "fill_strided_i64",
            "sum_f32", "sum_rows_f64", "argmax_f32", "argmax_rows_f32", "softmax_f32", "log_softmax_f32",
            "cross_entropy_forward_f32", "cross_entropy_backward_f32", "gather_f32", "scatter_add_f32", "index_select_f32",
            "index_add_f32", "topk_f32", "sgd_momentum_f32", "adamw_f32", "bn_stats_f32", "bn_relu_forward_f32",
            "bn_relu_backward_reduce_f32", "bn_relu_backward_dx_f32"];
        var all = PtxImages.Modules.SelectMany(m => PtxImages.EntryPoints(PtxImages.Get(m))).ToHashSet();
        Assert.That(required.Where(r => !all.Contains(r)), Is.Empty);
    }

    [Test]
    public void EntryPointsFollowOpDtypeNaming()
    {
        foreach (var m in PtxImages.Modules)
        {
            var entries = PtxImages.EntryPoints(PtxImages.Get(m));
            Assert.That(entries, Is.Not.Empty, m);
            foreach (var e in entries) Assert.That(DtypeName().IsMatch(e), $"{m}: '{e}' is not <op>_<dtype>");
        }
    }

    [Test]
    public void PtxDeclaresTheEntryPointsTheSourceDefines()
    {
        var kernels = CudaTestEnv.RequireKernelsDir();
        var clang = CudaTestEnv.Clang();
        var preprocessed = clang == null ? null : CudaTestEnv.RunClangOnAll(clang, kernels, "-E");
        foreach (var cu in Directory.GetFiles(kernels, "*.cu"))
        {
            var m = Path.GetFileNameWithoutExtension(cu);
            var entries = PtxImages.EntryPoints(PtxImages.Get(m)).ToHashSet();
            // Directly written kernels are visible without a preprocessor; macro-generated ones need clang -E.
            var direct = DirectKernel().Matches(File.ReadAllText(cu)).Select(x => x.Groups[1].Value).ToArray();
            Assert.That(direct.Where(d => !entries.Contains(d)), Is.Empty, $"{m}: kernels defined in the .cu but missing from the PTX");
            if (preprocessed == null) continue;
            var defined = PreprocessedKernel().Matches(preprocessed[m]).Select(x => x.Groups[1].Value).ToHashSet();
            Assert.That(entries, Is.EquivalentTo(defined), $"{m}: PTX entry points differ from the source's kernels");
        }
    }

    [Test]
    public void CommittedPtxIsNotStale()
    {
        var kernels = CudaTestEnv.RequireKernelsDir();
        var clang = CudaTestEnv.Clang() ?? Ignore("clang-14 not on PATH: cannot recompile kernels to check the committed PTX");
        var stale = new List<string>();
        foreach (var (name, fresh) in CudaTestEnv.RunClangOnAll(clang, kernels, "-S"))
        {
            var committed = Path.Combine(kernels, "ptx", name + ".ptx");
            if (!File.Exists(committed) || File.ReadAllText(committed) != fresh) stale.Add(name);
        }
        Assert.That(stale, Is.Empty, "PTX out of date with its .cu; run kernels/build-ptx.sh --force and commit kernels/ptx/");
    }

    static string Ignore(string why)
    {
        Assert.Ignore(why);
        return "";
    }

    [GeneratedRegex(@"^[a-z][a-z0-9_]*_(f16|bf16|f32|f64|i32|i64)(_[a-z0-9]+)*$")]
    private static partial Regex DtypeName();

    // A KERNEL line not inside a macro body (lines of a #define end with a backslash).
    [GeneratedRegex(@"^\s*KERNEL\s+void\s+([A-Za-z_]\w*)\s*\((?![^\n]*\\[ \t]*$)", RegexOptions.Multiline)]
    private static partial Regex DirectKernel();

    [GeneratedRegex(@"extern\s+""C""\s+__attribute__\(\(global\)\)\s+void\s+([A-Za-z_]\w*)\s*\(")]
    private static partial Regex PreprocessedKernel();
}
