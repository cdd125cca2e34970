using System.Collections;
using System.Text;
using MtlMoe.Engine;
using MtlMoe.Engine.IO;
using MtlMoe.Engine.NN;

namespace MtlMoe.Tests.NnOptim;

public class SafetensorsTests
{
    private string _dir = "";

    [SetUp] public void MakeDir() { _dir = Path.Combine(Path.GetTempPath(), "st-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }
    [TearDown] public void RemoveDir() { Directory.Delete(_dir, recursive: true); }

    private string P(string name) => Path.Combine(_dir, name);

    private static void Free(IEnumerable<Tensor> ts) { foreach (var t in ts) t.Dispose(); }

    [Test]
    public void RoundTripEveryDTypeWithMetadata()
    {
        var src = new Dictionary<string, Tensor>
        {
            ["f32"] = Tensor.FromArray(new[] { 1.5f, -2, 3.25f, float.MaxValue, float.Epsilon, -0f }, [2, 3]),
            ["f64"] = Tensor.FromArray(new[] { Math.PI, -1e300, 0.1, double.MinValue }),
            ["i32"] = Tensor.FromArray(new[] { int.MinValue, 0, int.MaxValue }, [3, 1]),
            ["i64"] = Tensor.FromArray(new[] { long.MinValue + 1 }, []),
            ["empty"] = Tensor.Zeros([0, 3]),
        };
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode ✓" };
        Safetensors.Save(P("all.safetensors"), src, meta);
        var back = Safetensors.Load(P("all.safetensors"), out var meta2);
        Assert.That(back.Keys, Is.EquivalentTo(src.Keys));
        Assert.That(meta2, Is.EquivalentTo(meta));
        foreach (var (name, t) in src)
        {
            Assert.That(back[name].DType, Is.EqualTo(t.DType), name);
            Assert.That(back[name].Shape, Is.EqualTo(t.Shape), name);
            Assert.That(back[name].Device, Is.EqualTo(Device.Cpu));
        }
        Assert.That(back["f32"].ToArray<float>(), Is.EqualTo(src["f32"].ToArray<float>()));
        Assert.That(back["f64"].ToArray<double>(), Is.EqualTo(src["f64"].ToArray<double>()));
        Assert.That(back["i32"].ToArray<int>(), Is.EqualTo(src["i32"].ToArray<int>()));
        Assert.That(back["i64"].ToArray<long>(), Is.EqualTo(src["i64"].ToArray<long>()));
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1), "no temporary file left behind");
        Free(src.Values); Free(back.Values);
    }

    [Test]
    public void NonContiguousTensorIsSavedRowMajor()
    {
        using var x = Tensor.FromArray(new[] { 1.0f, 2, 3, 4, 5, 6 }, [2, 3]);
        using var xt = x.T;
        Safetensors.Save(P("t.safetensors"), new Dictionary<string, Tensor> { ["xt"] = xt });
        var back = Safetensors.Load(P("t.safetensors"));
        Assert.That(back["xt"].Shape, Is.EqualTo(new[] { 3, 2 }));
        Assert.That(back["xt"].ToArray<float>(), Is.EqualTo(new[] { 1f, 4, 2, 5, 3, 6 }));
        Free(back.Values);
    }

    [Test]
    public void ModuleRoundTripKeepsNames()
    {
        using var a = new Sequential(new Linear(3, 4, rng: new Rng(1)), new ReLU(), new Linear(4, 2, rng: new Rng(2)));
        using var b = new Sequential(new Linear(3, 4, rng: new Rng(3)), new ReLU(), new Linear(4, 2, rng: new Rng(4)));
        a.SaveSafetensors(P("m.safetensors"));
        var raw = Safetensors.Load(P("m.safetensors"));
        Assert.That(raw.Keys, Is.EquivalentTo(new[] { "0.weight", "0.bias", "2.weight", "2.bias" }));
        Free(raw.Values);
        var report = b.LoadSafetensors(P("m.safetensors"));
        Assert.That(report.IsExactMatch, Is.True);
        foreach (var (name, t) in a.StateDict()) Assert.That(b.StateDict()[name].ToArray<float>(), Is.EqualTo(t.ToArray<float>()), name);

        using var other = new Sequential(new Linear(3, 5));
        Assert.Throws<InvalidOperationException>(() => other.LoadSafetensors(P("m.safetensors")));
        var lax = other.LoadSafetensors(P("m.safetensors"), strict: false);
        Assert.That(lax.ShapeMismatched, Has.Count.EqualTo(2));
    }

    /// <summary>Hand-built bytes: header length, JSON padded with spaces to 8 bytes, then the data.</summary>
    private static byte[] KnownFile()
    {
        const string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[8,16]}}";
        var header = Encoding.UTF8.GetBytes(json).ToList();
        while (header.Count % 8 != 0) header.Add((byte)' ');
        var bytes = new List<byte>();
        ulong n = (ulong)header.Count;
        for (int i = 0; i < 8; i++) bytes.Add((byte)(n >> (8 * i)));
        bytes.AddRange(header);
        bytes.AddRange(new byte[] { 0x00, 0x00, 0xC0, 0x3F });             // 1.5f  = 0x3FC00000
        bytes.AddRange(new byte[] { 0x00, 0x00, 0x00, 0xC0 });             // -2.0f = 0xC0000000
        bytes.AddRange(new byte[] { 0x07, 0, 0, 0, 0, 0, 0, 0 });          // 7L
        return bytes.ToArray();
    }

    [Test]
    public void HandWrittenFileLoadsToKnownValuesAndSaveWritesTheSameBytes()
    {
        File.WriteAllBytes(P("known.safetensors"), KnownFile());
        var t = Safetensors.Load(P("known.safetensors"));
        Assert.That(t["a"].DType, Is.EqualTo(DType.Float32));
        Assert.That(t["a"].ToArray<float>(), Is.EqualTo(new[] { 1.5f, -2f }));
        Assert.That(t["b"].DType, Is.EqualTo(DType.Int64));
        Assert.That(t["b"].Shape, Is.EqualTo(new[] { 1, 1 }));
        Assert.That(t["b"].ToArray<long>(), Is.EqualTo(new[] { 7L }));
        Safetensors.Save(P("again.safetensors"), t);
        Assert.That(File.ReadAllBytes(P("again.safetensors")), Is.EqualTo(KnownFile()));
        Free(t.Values);
    }

    /// <summary>A dictionary whose values throw once the writer reaches the data section.</summary>
    private sealed class FailingDict(Dictionary<string, Tensor> inner, int failAfter) : IReadOnlyDictionary<string, Tensor>
    {
        private int _reads;
        public Tensor this[string key] => ++_reads > failAfter ? throw new IOException("simulated crash") : inner[key];
        public IEnumerable<string> Keys => inner.Keys;
        public IEnumerable<Tensor> Values => inner.Values;
        public int Count => inner.Count;
        public bool ContainsKey(string key) => inner.ContainsKey(key);
        public bool TryGetValue(string key, out Tensor value) => inner.TryGetValue(key, out value!);
        public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => inner.GetEnumerator();
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    [Test]
    public void FailedSaveLeavesThePreviousFileIntact()
    {
        File.WriteAllBytes(P("x.safetensors"), KnownFile());
        using var a = Tensor.Ones([1000]); using var b = Tensor.Ones([1000]);
        var d = new FailingDict(new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b }, failAfter: 3); // header reads 2, then data of "a", then crash
        Assert.Throws<IOException>(() => Safetensors.Save(P("x.safetensors"), d));
        Assert.That(File.ReadAllBytes(P("x.safetensors")), Is.EqualTo(KnownFile()));
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1), "the temporary file was removed");
    }
}
