using System.IO.Compression;
using System.Text;
using MtlMoe.Engine;
using MtlMoe.Engine.IO;

namespace MtlMoe.Tests.Pretrained;

/// <summary>The committed PyTorch fixtures, hand-made pickles and zips for the malformed-input tests, and comparisons.</summary>
internal static class TorchFiles
{
    /// <summary>A fixture written by tools/torch-fixtures/make_fixtures.py.</summary>
    public static string Fixture(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "Transfer", "Fixtures", name);

    /// <summary>A fresh temp folder.</summary>
    public static string NewTempDir()
    {
        string d = Path.Combine(Path.GetTempPath(), "mtlmoe-transfer-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Pickle opcodes as bytes: "c" + module + "\n" + name + "\n" and the like, for crafted pickles.</summary>
    public static byte[] Global(string module, string name) => Encoding.ASCII.GetBytes($"c{module}\n{name}\n");

    /// <summary>BINUNICODE of <paramref name="s"/>.</summary>
    public static byte[] Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return [(byte)'X', .. BitConverter.GetBytes(b.Length), .. b];
    }

    /// <summary>A zip laid out as torch.save writes it: archive/data.pkl, archive/data/&lt;key&gt; per storage, archive/version.</summary>
    public static string Zip(string dir, string name, byte[] pickle, params (string Key, byte[] Bytes)[] storages)
    {
        string path = Path.Combine(dir, name);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string entry, byte[] bytes) { using var s = zip.CreateEntry(entry, CompressionLevel.NoCompression).Open(); s.Write(bytes); }
        Add("archive/data.pkl", pickle);
        foreach (var (k, b) in storages) Add($"archive/data/{k}", b);
        Add("archive/version", "3\n"u8.ToArray());
        return path;
    }

    /// <summary>max |a − b| / max |b| (0 when both are zero).</summary>
    public static double RelativeError(float[] actual, float[] expected)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        double diff = 0, scale = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            Assert.That(float.IsFinite(actual[i]), $"element {i} is {actual[i]}");
            diff = Math.Max(diff, Math.Abs(actual[i] - (double)expected[i]));
            scale = Math.Max(scale, Math.Abs((double)expected[i]));
        }
        double rel = scale == 0 ? diff : diff / scale;
        TestContext.Out.WriteLine($"relative error {rel:E2} over {actual.Length} values");
        return rel;
    }

    /// <summary>cos(a, b).</summary>
    public static double Cosine(float[] a, float[] b)
    {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
        return ab / Math.Sqrt(aa * bb);
    }

    /// <summary>Loads a safetensors reference file; the caller disposes the tensors.</summary>
    public static Dictionary<string, Tensor> Reference(string name) => DisposeScope.Outside(() => Safetensors.Load(Fixture(name)));

    /// <summary>Whether /usr/bin/python3 can import torch and torchvision (the full-size checks need it).</summary>
    public static readonly Lazy<string?> PythonTorchMissing = new(() =>
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python)) return $"{python} is not installed";
        try
        {
            using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(python, ["-c", "import torch, torchvision"])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
            p.WaitForExit(60_000);
            return p.ExitCode == 0 ? null : $"{python} has no torch/torchvision (python3-torch is not installed)";
        }
        catch (Exception e) { return $"{python} could not run: {e.Message}"; }
    });
}
