using System.Diagnostics;
using MtlMoe.Engine.Cuda;

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

    /// <summary>Runs clang-14 exactly as kernels/build-ptx.sh does, plus <paramref name="extra"/>; returns stdout or the file written.</summary>
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
        if (p.ExitCode != 0) Assert.Fail($"clang-14 failed on {Path.GetFileName(source)}: {stderr.Result}");
        return File.ReadAllText(output);
    }

    static T Ignore<T>(string why)
    {
        Assert.Ignore(why);
        return default!;
    }
}
