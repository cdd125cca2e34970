using MtlMoe.Engine;
using MtlMoe.Engine.Backends.Cuda;
using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Tests.Cuda;

[Category("Cuda")]
public class CudaResolverTests
{
    string _root = "";

    [SetUp]
    public void MakeFakeTree() => _root = Directory.CreateTempSubdirectory("mtlmoe-cuda-").FullName;

    [TearDown]
    public void RemoveFakeTree() => Directory.Delete(_root, recursive: true);

    static Func<string, string?> Env(Dictionary<string, string> vars) => k => vars.GetValueOrDefault(k);

    [Test]
    public void ProbeOrderIsOverrideThenCudaHomeThenLoaderThenPip()
    {
        var over = Path.Combine(_root, "override");
        var cudaHome = Path.Combine(_root, "cuda");
        var venv = Path.Combine(_root, "venv");
        var pipLib = Path.Combine(venv, "lib", "python3.12", "site-packages", "nvidia", "cublas", "lib");
        Directory.CreateDirectory(pipLib);
        Directory.CreateDirectory(Path.Combine(venv, "bin"));
        var env = Env(new()
        {
            [CudaLibraryResolver.OverrideVariable] = over,
            ["CUDA_HOME"] = cudaHome,
            ["PATH"] = Path.Combine(venv, "bin") + ":/usr/bin",
        });

        var c = CudaLibraryResolver.Candidates(CuBlas.Library, env);

        Assert.That(c.Take(3), Is.EqualTo(new[] {
            Path.Combine(over, "libcublas.so.13"), Path.Combine(over, "libcublas.so.12"), Path.Combine(over, "libcublas.so.11") }));
        var iHome = c.ToList().IndexOf(Path.Combine(cudaHome, "lib64", "libcublas.so.12"));
        var iLoader = c.ToList().IndexOf("libcublas.so.12");
        var iPip = c.ToList().IndexOf(Path.Combine(pipLib, "libcublas.so.12"));
        Assert.That(iHome, Is.GreaterThan(2), "CUDA_HOME/lib64 after the override");
        Assert.That(iLoader, Is.GreaterThan(iHome), "bare soname (loader path) after CUDA_HOME");
        Assert.That(iPip, Is.GreaterThan(iLoader), "pip nvidia/*/lib after the loader path");
    }

    [Test]
    public void SonamesAreNewestFirst()
    {
        Assert.That(CudaLibraryResolver.Sonames(CuBlas.Library), Is.EqualTo(new[] { "libcublas.so.13", "libcublas.so.12", "libcublas.so.11" }));
        Assert.That(CudaLibraryResolver.Sonames(CuDnn.Library), Is.EqualTo(new[] { "libcudnn.so.9", "libcudnn.so.8" }));
        Assert.That(CudaLibraryResolver.Sonames(CudaDriver.Library), Is.EqualTo(new[] { "libcuda.so.1" }));
    }

    [Test]
    public void WithoutOverrideTheLoaderPathComesFirst()
    {
        var c = CudaLibraryResolver.Candidates(CuDnn.Library, Env(new()));
        Assert.That(c.Take(2), Is.EqualTo(new[] { "libcudnn.so.9", "libcudnn.so.8" }));
    }

    [Test]
    public void PipFoldersAreFoundUnderVirtualEnv()
    {
        var lib = Path.Combine(_root, "lib", "python3.11", "site-packages", "nvidia", "cudnn", "lib");
        Directory.CreateDirectory(lib);
        Directory.CreateDirectory(Path.Combine(_root, "lib", "python3.11", "site-packages", "nvidia", "nolib"));
        var folders = CudaLibraryResolver.PipLibraryFolders(Env(new() { ["VIRTUAL_ENV"] = _root }));
        Assert.That(folders, Does.Contain(lib));
        Assert.That(folders.Where(f => f.StartsWith(_root, StringComparison.Ordinal)), Has.Exactly(1).Items);
    }

    [Test]
    public void AvailabilityReasonIsOneSentenceAndNeverThrows()
    {
        var ok = CudaRuntime.IsAvailable(out var reason);
        Assert.That(reason, Is.Not.Empty.And.Not.Contain('\n'));
        if (!ok && !CudaLibraryResolver.TryLoad(CudaDriver.Library, out _, out _))
            Assert.That(reason, Does.StartWith("libcuda.so.1 not found (tried ").And.EndWith("no NVIDIA driver on this machine"));
    }

    [Test]
    public void RequestingCudaWithoutADriverSaysWhy()
    {
        if (CudaRuntime.IsAvailable(out _)) Assert.Ignore("CUDA is available here; the unavailable path is not reachable");
        var ex = Assert.Throws<DeviceUnavailableException>(CudaRuntime.EnsureAvailable);
        Assert.That(ex!.Message, Does.StartWith("CUDA device requested but "));
    }
}
