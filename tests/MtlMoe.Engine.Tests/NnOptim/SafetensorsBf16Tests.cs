using System.Runtime.InteropServices;
using MtlMoe.Engine;
using MtlMoe.Engine.IO;

namespace MtlMoe.Tests.NnOptim;

/// <summary>safetensors BF16 (read and write) and F16 (read): exact widening on load, round-to-nearest-even on save.</summary>
public class SafetensorsBf16Tests
{
    private string _dir = "";

    [SetUp] public void MakeDir() { _dir = Path.Combine(Path.GetTempPath(), "st16-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }
    [TearDown] public void RemoveDir() { Directory.Delete(_dir, recursive: true); }

    private string P(string name) => Path.Combine(_dir, name);

    private static void Free(IEnumerable<Tensor> ts) { foreach (var t in ts) t.Dispose(); }

    // The literals make_torch_bf16_fixture.py converts: ties, a subnormal, beyond float16's range, ±0, ±Inf, NaN.
    private static readonly float[] Source = [1.0f, -2.5f, 3.14159265f, 1.00390625f, 1.01171875f, 65504.0f, 70000.0f, 1e-40f,
        -0.0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 3.3895e38f, 1e-8f, 0.1f, 12345.678f];

    // tests/MtlMoe.Engine.Tests/NnOptim/make_torch_bf16_fixture.py with Debian's PyTorch 1.13 (the safetensors Python
    // package is not installed here, so the script frames the file by hand; the tensor bytes are PyTorch's own casts).
    private const string TorchFile =
        "KAEAAAAAAAB7ImFjdC5iZjE2Ijp7ImR0eXBlIjoiQkYxNiIsInNoYXBlIjpbNCw0XSwiZGF0YV9vZmZzZXRzIjpbMCwzMl19LCJhY3QuZjE2Ijp7ImR0eXBlIjoiRjE2Iiwic2hhcGUiOlsyLDhdLCJkYXRhX29mZnNldHMiOlszMiw2NF19LCJzdGVwLmk2NCI6eyJkdHlwZSI6Ikk2NCIsInNoYXBlIjpbMV0sImRhdGFfb2Zmc2V0cyI6WzY0LDcyXX0sIncuZjMyIjp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOlsyLDNdLCJkYXRhX29mZnNldHMiOls3Miw5Nl19LCJfX21ldGFkYXRhX18iOnsicHJvZHVjZXIiOiJ0b3JjaCAxLjEzLjBhMCJ9fYA/IMBJQIA/gj+AR4lHAQAAgIB/gP///39/LDLNPUFGADwAwUhCBDwMPP97AHwAAACAAHwA/AB+AHwAAGYuB3IHAAAAAAAAAAAAgD8AACDA2w9JQACAgD8AgIE/AOB/Rw==";

    private static float Bf16(float f) => BFloat16.FromFloat(f).ToFloat();

    [Test]
    public void FloatsSavedAsBf16ComeBackRoundedToNearestEven()
    {
        var rng = new Rng(3);
        using var x = Tensor.RandN([3, 5, 7], rng);                       // x: [3, 5, 7]
        using var xt = x.Transpose(0, 2);                                   // non-contiguous: [7, 5, 3]
        using var d = Tensor.FromArray(new[] { Math.PI, -1e-3, 1e30 });     // Float64 goes through float
        using var ids = Tensor.FromArray(new long[] { 4, 5 });
        var src = new Dictionary<string, Tensor> { ["x"] = x, ["xt"] = xt, ["d"] = d, ["ids"] = ids };
        Safetensors.Save(P("h.safetensors"), src, floatsAs: DType.BFloat16);

        var info = Safetensors.ReadHeader(P("h.safetensors")).ToDictionary(e => e.Name);
        Assert.That(info["x"].DTypeCode, Is.EqualTo("BF16"));
        Assert.That(info["xt"].DTypeCode, Is.EqualTo("BF16"));
        Assert.That(info["d"].DTypeCode, Is.EqualTo("BF16"));
        Assert.That(info["ids"].DTypeCode, Is.EqualTo("I64"), "integer tensors keep their dtype");
        Assert.That(info["xt"].Shape, Is.EqualTo(new[] { 7, 5, 3 }));
        // Two bytes per element: header + 2·(105 + 105 + 3) + 8·2 bytes of data.
        long header = BitConverter.ToInt64(File.ReadAllBytes(P("h.safetensors")), 0);
        Assert.That(new FileInfo(P("h.safetensors")).Length, Is.EqualTo(8 + header + 2 * (105 + 105 + 3) + 16));

        var back = Safetensors.Load(P("h.safetensors"));
        Assert.That(back["x"].DType, Is.EqualTo(DType.Float32), "BF16 loads as Float32");
        Assert.That(back["x"].ToArray<float>(), Is.EqualTo(x.ToArray<float>().Select(Bf16).ToArray()));
        Assert.That(back["xt"].ToArray<float>(), Is.EqualTo(xt.ToArray<float>().Select(Bf16).ToArray()));
        Assert.That(back["d"].ToArray<float>(), Is.EqualTo(new[] { 3.140625f, Bf16(-1e-3f), Bf16(1e30f) }));
        Assert.That(back["ids"].ToArray<long>(), Is.EqualTo(new long[] { 4, 5 }));
        Assert.That(back["x"].ToArray<float>(), Is.Not.EqualTo(x.ToArray<float>()), "random floats do lose bits in bf16");

        // Values already on the bf16 grid survive a second round trip bit for bit.
        Safetensors.Save(P("h2.safetensors"), back, floatsAs: DType.BFloat16);
        var again = Safetensors.Load(P("h2.safetensors"));
        Assert.That(again["x"].ToArray<float>(), Is.EqualTo(back["x"].ToArray<float>()));
        Free(back.Values); Free(again.Values);
    }

    [Test]
    public void DefaultSaveKeepsFloat32()
    {
        using var x = Tensor.FromArray(new[] { 0.1f, 0.2f });
        Safetensors.Save(P("f.safetensors"), new Dictionary<string, Tensor> { ["x"] = x });
        Assert.That(Safetensors.ReadHeader(P("f.safetensors")).Single().DTypeCode, Is.EqualTo("F32"));
    }

    [Test]
    public void OnlyBf16IsAcceptedAsAFloatStorage()
    {
        using var x = Tensor.FromArray(new[] { 1f });
        var ex = Assert.Throws<ArgumentException>(() => Safetensors.Save(P("bad.safetensors"), new Dictionary<string, Tensor> { ["x"] = x }, floatsAs: DType.Int32));
        Assert.That(ex!.Message, Does.Contain("not as int32").And.Contain("bad.safetensors"));
        Assert.That(File.Exists(P("bad.safetensors")), Is.False);
    }

    [Test]
    public void FileWrittenFromPyTorchLoads()
    {
        File.WriteAllBytes(P("torch.safetensors"), Convert.FromBase64String(TorchFile));
        var info = Safetensors.ReadHeader(P("torch.safetensors")).ToDictionary(e => e.Name);
        Assert.That(info["act.bf16"].DTypeCode, Is.EqualTo("BF16"));
        Assert.That(info["act.f16"].DTypeCode, Is.EqualTo("F16"));
        var t = Safetensors.Load(P("torch.safetensors"), out var meta);
        Assert.That(meta["producer"], Does.StartWith("torch "));
        Assert.That(t["act.bf16"].Shape, Is.EqualTo(new[] { 4, 4 }));
        Assert.That(t["act.f16"].Shape, Is.EqualTo(new[] { 2, 8 }));
        Assert.That(t["step.i64"].ToArray<long>(), Is.EqualTo(new long[] { 7 }));
        Assert.That(t["w.f32"].ToArray<float>(), Is.EqualTo(Source[..6]));

        // PyTorch's bf16 cast and ours give the same value for every non-NaN input (ties, subnormal, overflow, ±0, ±Inf).
        var bf = t["act.bf16"].ToArray<float>();
        var hf = t["act.f16"].ToArray<float>();
        for (int i = 0; i < Source.Length; i++)
        {
            if (float.IsNaN(Source[i])) { Assert.That(float.IsNaN(bf[i]) && float.IsNaN(hf[i]), $"element {i}: NaN stays NaN"); continue; }
            Assert.That(BitConverter.SingleToUInt32Bits(bf[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(Bf16(Source[i]))), $"bf16 element {i} ({Source[i]:R})");
            Assert.That(BitConverter.SingleToUInt32Bits(hf[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits((float)(Half)Source[i])), $"f16 element {i} ({Source[i]:R})");
        }
        Assert.That(hf[6], Is.EqualTo(float.PositiveInfinity), "70000 overflows float16");
        Assert.That(bf[6], Is.EqualTo(70144f), "but not bfloat16");

        // Writing the loaded values back as BF16 reproduces PyTorch's bytes (NaN payloads aside).
        Safetensors.Save(P("ours.safetensors"), new Dictionary<string, Tensor> { ["act.bf16"] = t["act.bf16"] }, floatsAs: DType.BFloat16);
        var ours = Tail(File.ReadAllBytes(P("ours.safetensors")), 32);
        var theirs = TorchBytes("act.bf16");
        var a = MemoryMarshal.Cast<byte, ushort>(ours); var b = MemoryMarshal.Cast<byte, ushort>(theirs);
        for (int i = 0; i < Source.Length; i++)
            if (!float.IsNaN(Source[i])) Assert.That(a[i], Is.EqualTo(b[i]), $"element {i}");
        Free(t.Values);
    }

    private static byte[] Tail(byte[] file, int n) => file[^n..];

    // The data bytes of one tensor of the PyTorch fixture, located through its header.
    private byte[] TorchBytes(string name)
    {
        var file = Convert.FromBase64String(TorchFile);
        long n = BitConverter.ToInt64(file, 0);
        using var doc = System.Text.Json.JsonDocument.Parse(file.AsMemory(8, (int)n));
        var off = doc.RootElement.GetProperty(name).GetProperty("data_offsets");
        int begin = off[0].GetInt32(), end = off[1].GetInt32();
        return file[(int)(8 + n + begin)..(int)(8 + n + end)];
    }

    [Test]
    public void Bf16SizeMismatchNamesTheTensor()
    {
        // A BF16 [3] tensor needs 6 bytes; the header claims 4.
        var json = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]}}";
        var h = System.Text.Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + h.Length + 4];
        BitConverter.GetBytes((long)h.Length).CopyTo(bytes, 0);
        h.CopyTo(bytes, 8);
        File.WriteAllBytes(P("short.safetensors"), bytes);
        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Load(P("short.safetensors")));
        Assert.That(ex!.Message, Does.Contain("tensor 'w'").And.Contain("BF16 [3] needs 6"));
    }
}
