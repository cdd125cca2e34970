using System.Diagnostics;
using MtlMoe.Engine.Backends.Cuda;

namespace MtlMoe.Tests.Cuda;

/// <summary>Skipping rules and paths shared by the CUDA tests.</summary>
static class CudaTestEnv
{
    /// <summary>Ignores the test (one line, with the reason) unless a CUDA device is usable.</summary>
    public static void RequireCuda()
    {
        if (!CudaRuntime.IsAvailable(out var reason)) Assert.Ignore($"CUDA not available: {reason}");
    }

    /// <summary>The repository's kernels/ folder (walking up from the test binary), or null when not shipped alongside.</summary>
    public static string? KernelsDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var k = Path.Combine(dir.FullName, "kernels");
            if (File.Exists(Path.Combine(k, "build-ptx.sh"))) return k;
        }
        return null;
    }

    /// <summary>The kernels folder, or an ignored test when the sources are not present (e.g. in the GPU bundle).</summary>
    public static string RequireKernelsDir() =>
        KernelsDir() ?? Ignore<string>("kernels/ sources not found above the test binary (not a repository checkout)");

    /// <summary>clang-14 on PATH, or null.</summary>
    public static string? Clang()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, "clang-14");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Runs clang-14 exactly as kernels/build-ptx.sh does, in <paramref name="mode"/> (-S or -E); returns the file written.</summary>
    /// <exception cref="InvalidOperationException">clang failed; the message names the source and carries clang's stderr.</exception>
    public static string RunClang(string clang, string kernels, string source, string mode, string output)
    {
        var psi = new ProcessStartInfo(clang)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (var a in new[] { "-x", "cuda", "--cuda-device-only", "-nocudainc", "-nocudalib", "--cuda-gpu-arch=sm_80", "-O3", mode,
                     "-I", kernels, source, "-o", output })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"clang-14 failed on {Path.GetFileName(source)}: {stderr.Result}");
        return File.ReadAllText(output);
    }

    /// <summary>
    /// Every kernels/*.cu through <see cref="RunClang"/> in <paramref name="mode"/>, one clang per core at a time (the
    /// sources are independent; sequentially the two PTX checks were 6.5 s of the engine suite). Keyed by module name;
    /// a clang failure fails the calling test with clang's message.
    /// </summary>
    public static SortedDictionary<string, string> RunClangOnAll(string clang, string kernels, string mode)
    {
        var sources = Directory.GetFiles(kernels, "*.cu");
        var outputs = new string[sources.Length];
        try
        {
            Parallel.For(0, sources.Length, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                var tmp = Path.GetTempFileName();
                try { outputs[i] = RunClang(clang, kernels, sources[i], mode, tmp); }
                finally { File.Delete(tmp); }
            });
        }
        catch (AggregateException e) { Assert.Fail(string.Join("\n", e.InnerExceptions.Select(x => x.Message))); }
        var byModule = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < sources.Length; i++) byModule[Path.GetFileNameWithoutExtension(sources[i])] = outputs[i];
        return byModule;
    }

    static T Ignore<T>(string why)
    {
        Assert.Ignore(why);
        return default!;
    }
}
