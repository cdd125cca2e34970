using System.Reflection;
using System.Runtime.InteropServices;

namespace MtlMoe.Engine.Backends.Cuda.Native;

/// <summary>
/// Finds the CUDA libraries for the engine assembly's <c>[LibraryImport]</c>s. Order, folder by folder:
/// <c>$MTLMOE_CUDA_LIB_DIR</c>, <c>$CUDA_HOME/lib64</c> (and <c>$CUDA_PATH/lib64</c>), the loader's default search
/// (LD_LIBRARY_PATH, ld.so.cache), then pip wheels' <c>site-packages/nvidia/*/lib</c> under the active venvs and the
/// usual Python prefixes. Within a folder the newest soname wins (libcublas.so.13, .12, .11; libcudnn.so.9, .8).
/// Every attempt is recorded (<see cref="Attempts"/>) so a failure can say where it looked.
/// </summary>
public static class CudaLibraryResolver
{
    /// <summary>Environment variable naming a folder searched before everything else.</summary>
    public const string OverrideVariable = EnvironmentVariables.CudaLibDir;

    static readonly Lock Gate = new();
    static bool _registered;
    static readonly Dictionary<string, nint> Loaded = new();
    static readonly Dictionary<string, List<string>> Tried = new();

    /// <summary>The sonames probed for a logical library name, newest first.</summary>
    public static IReadOnlyList<string> Sonames(string library) => library switch
    {
        CudaDriver.Library or "cuda" or "libcuda" => ["libcuda.so.1"],
        CuBlas.Library or "cublas" => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"],
        CuDnn.Library or "cudnn" => ["libcudnn.so.9", "libcudnn.so.8"],
        _ => [library],
    };

    /// <summary>Registers the resolver for the engine assembly (idempotent; called by the binding classes' static constructors).</summary>
    public static void Register()
    {
        lock (Gate)
        {
            if (_registered) return;
            _registered = true;
            try { NativeLibrary.SetDllImportResolver(typeof(CudaLibraryResolver).Assembly, Resolve); }
            catch (InvalidOperationException) { /* another resolver owns the assembly; fall back to default probing */ }
        }
    }

    static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName is not (CudaDriver.Library or CuBlas.Library or CuDnn.Library)) return 0;
        return TryLoad(libraryName, out var h, out _) ? h : 0;
    }

    /// <summary>Loads (once) the library for a logical name; on failure <paramref name="error"/> lists every path tried.</summary>
    public static bool TryLoad(string library, out nint handle, out string error)
    {
        lock (Gate)
        {
            if (Loaded.TryGetValue(library, out handle)) { error = ""; return true; }
            var tried = new List<string>();
            Tried[library] = tried;
            foreach (var candidate in Candidates(library, Environment.GetEnvironmentVariable))
            {
                tried.Add(candidate);
                // A bare soname goes to dlopen's default search; a path must exist to be worth a dlopen.
                if (candidate.Contains('/') && !File.Exists(candidate)) continue;
                if (NativeLibrary.TryLoad(candidate, out handle))
                {
                    Loaded[library] = handle;
                    error = "";
                    return true;
                }
            }
            handle = 0;
            error = $"{Sonames(library)[0]} not found (tried {Summarize(tried)})";
            return false;
        }
    }

    /// <summary>The candidates probed so far for a logical name (empty before the first load attempt).</summary>
    public static IReadOnlyList<string> Attempts(string library)
    {
        lock (Gate) return Tried.TryGetValue(library, out var t) ? t.ToArray() : [];
    }

    /// <summary>
    /// The ordered probe list for <paramref name="library"/>: full paths for each folder (override, CUDA_HOME, …),
    /// the bare sonames (the loader's own search) after the CUDA_HOME folders, then pip folders. Pure apart from
    /// listing folders, so tests can drive it with a fake environment.
    /// </summary>
    public static IReadOnlyList<string> Candidates(string library, Func<string, string?> env)
    {
        var names = Sonames(library);
        var list = new List<string>();
        void AddFolder(string? dir)
        {
            if (string.IsNullOrWhiteSpace(dir)) return;
            foreach (var n in names) list.Add(Path.Combine(dir, n));
        }
        AddFolder(env(OverrideVariable));
        foreach (var v in new[] { "CUDA_HOME", "CUDA_PATH" })
        {
            var root = env(v);
            if (string.IsNullOrWhiteSpace(root)) continue;
            AddFolder(Path.Combine(root, "lib64"));
            AddFolder(Path.Combine(root, "lib"));
        }
        list.AddRange(names);
        foreach (var dir in PipLibraryFolders(env)) AddFolder(dir);
        return list.Distinct().ToList();
    }

    /// <summary>Existing <c>site-packages/nvidia/*/lib</c> folders under venvs on PATH, VIRTUAL_ENV, CONDA_PREFIX, ~/.local and system prefixes.</summary>
    public static IReadOnlyList<string> PipLibraryFolders(Func<string, string?> env)
    {
        var prefixes = new List<string>();
        void Add(string? p) { if (!string.IsNullOrWhiteSpace(p)) prefixes.Add(p); }
        Add(env("VIRTUAL_ENV"));
        Add(env("CONDA_PREFIX"));
        foreach (var entry in (env("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (Path.GetFileName(entry.TrimEnd('/')) == "bin") Add(Path.GetDirectoryName(entry.TrimEnd('/')));
        var home = env("HOME");
        if (!string.IsNullOrEmpty(home)) Add(Path.Combine(home, ".local"));
        foreach (var p in new[] { "/usr/local", "/usr", "/opt/conda" }) Add(p);

        var folders = new List<string>();
        foreach (var prefix in prefixes.Distinct())
        {
            var lib = Path.Combine(prefix, "lib");
            if (!Directory.Exists(lib)) continue;
            IEnumerable<string> pythons;
            try { pythons = Directory.GetDirectories(lib, "python3*").OrderDescending(StringComparer.Ordinal); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (var py in pythons)
                foreach (var sp in new[] { "site-packages", "dist-packages" })
                {
                    var nvidia = Path.Combine(py, sp, "nvidia");
                    if (!Directory.Exists(nvidia)) continue;
                    try
                    {
                        foreach (var pkg in Directory.GetDirectories(nvidia).Order(StringComparer.Ordinal))
                        {
                            var l = Path.Combine(pkg, "lib");
                            if (Directory.Exists(l)) folders.Add(l);
                        }
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                }
        }
        return folders.Distinct().ToList();
    }

    static string Summarize(List<string> tried) =>
        tried.Count <= 6 ? string.Join(", ", tried) : string.Join(", ", tried.Take(6)) + $", … {tried.Count - 6} more";
}
