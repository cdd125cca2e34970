using MtlMoe.Engine;
using MtlMoe.Engine.IO.Torch;
using static MtlMoe.Tests.Pretrained.TorchFiles;

namespace MtlMoe.Tests.Pretrained;

/// <summary>
/// The .pth reader on files PyTorch wrote (every storage feature, zip and legacy format) and on crafted
/// malicious or broken files, each of which must end in one clear error naming the file with nothing run.
/// </summary>
[NonParallelizable] // counts live tensors process-wide, so other fixtures must not allocate meanwhile
public class TorchCheckpointTests
{
    [TestCase("tensors.pth")]
    [TestCase("tensors_legacy.pth")]
    public void EveryStorageFeatureReadsAsPyTorchWroteIt(string file)
    {
        using var expected = new TensorSet(Reference("tensors_expected.safetensors"));
        using var actual = new TensorSet(TorchCheckpoint.Load(Fixture(file)));
        Assert.That(actual.Tensors.Keys, Is.EquivalentTo(expected.Tensors.Keys));
        foreach (var (name, e) in expected.Tensors)
        {
            var a = actual.Tensors[name];
            Assert.That(a.Shape, Is.EqualTo(e.Shape), name);
            Assert.That(a.DType, Is.EqualTo(e.DType), name);
            if (e.DType == DType.Int64) Assert.That(a.ToLongArray(), Is.EqualTo(e.ToLongArray()), name);
            else Assert.That(a.ToFloatArray(), Is.EqualTo(e.ToFloatArray()), name);
        }
        // The fixture's views really are what they claim: a value only a correct offset/stride walk gives.
        Assert.That(actual.Tensors["shared_b"].ToFloatArray(), Is.EqualTo(new[] { 3f, 3.5f, 4f, 4.5f, 5f, 5.5f }));
        Assert.That(actual.Tensors["broadcast"].ToFloatArray(), Is.EqualTo(new[] { 1f, 2f, 3f, 1f, 2f, 3f }));
    }

    [Test]
    public void NestedCheckpointsGiveDottedNamesAndListWhatIsNotATensor()
    {
        using var t = new TensorSet(TorchCheckpoint.Load(Fixture("nested.pth"), out var ignored));
        Assert.That(t.Tensors.Keys, Is.EquivalentTo(new[] { "state_dict.w", "state_dict.n" }));
        Assert.That(ignored, Is.EqualTo(new[] { "epoch" }));
    }

    private static void AssertRejected(string path, params string[] expected)
    {
        long before = MemoryStats.LiveTensors;
        var ex = Assert.Throws<TorchFormatException>(() => TorchCheckpoint.Load(path));
        Assert.That(ex!.Message, Does.StartWith($"torch checkpoint '{path}'"));
        foreach (var e in expected) Assert.That(ex.Message, Does.Contain(e));
        Assert.That(MemoryStats.LiveTensors, Is.EqualTo(before), "no tensor left behind");
    }

    [Test]
    public void ATruncatedZipIsOneClearError()
    {
        string dir = NewTempDir();
        var bytes = File.ReadAllBytes(Fixture("resnet18_narrow.pth"));
        foreach (int cut in new[] { bytes.Length / 2, bytes.Length - 10 })
        {
            string path = Path.Combine(dir, $"cut{cut}.pth");
            File.WriteAllBytes(path, bytes[..cut]);
            AssertRejected(path, "truncated");
        }
    }

    [Test]
    public void ATruncatedLegacyFileIsOneClearError()
    {
        string dir = NewTempDir();
        var bytes = File.ReadAllBytes(Fixture("tensors_legacy.pth"));
        foreach (int cut in new[] { 30, bytes.Length / 2, bytes.Length - 3 })
        {
            string path = Path.Combine(dir, $"cut{cut}.pth");
            File.WriteAllBytes(path, bytes[..cut]);
            AssertRejected(path, "truncated");
        }
    }

    [Test]
    public void OsSystemIsRefusedAndNeverRun()
    {
        string dir = NewTempDir();
        string marker = Path.Combine(dir, "ran");
        // os.system("touch <marker>") as pickle's __reduce__ would write it.
        byte[] pickle = [0x80, 2, .. Global("os", "system"), .. Str($"touch {marker}"), 0x85, (byte)'R', (byte)'.'];
        string path = Zip(dir, "evil.pth", pickle);
        AssertRejected(path, "refused the global 'os.system'", "nothing was executed");
        Assert.That(File.Exists(marker), Is.False);
    }

    [TestCase("builtins", "eval")]
    [TestCase("subprocess", "Popen")]
    [TestCase("torch", "load")]
    [TestCase("torch.storage", "_load_from_bytes")]
    [TestCase("collections", "defaultdict")]
    public void EveryGlobalOutsideTheListIsRefused(string module, string name)
    {
        // Inside an otherwise ordinary state dict, via STACK_GLOBAL (protocol 4) this time.
        byte[] pickle = [0x80, 4, (byte)'}', (byte)'(', .. Str("w"), .. Str(module), .. Str(name), 0x93, (byte)')', (byte)'R', (byte)'u', (byte)'.'];
        AssertRejected(Zip(NewTempDir(), "bad.pth", pickle), $"refused the global '{module}.{name}'");
    }

    [Test]
    public void OpcodesThatBuildArbitraryObjectsAreRefused()
    {
        // INST "os system" would call os.system in Python's unpickler.
        byte[] pickle = [0x80, 2, (byte)'(', .. Str("ls"), (byte)'i', .. "os\nsystem\n"u8.ToArray(), (byte)'.'];
        AssertRejected(Zip(NewTempDir(), "inst.pth", pickle), "pickle opcode 0x69 ('i') is not allowed");
    }

    [Test]
    public void UnsupportedStorageTypesAreNamed()
    {
        byte[] pid = [(byte)'(', .. Str("storage"), .. Global("torch", "IntStorage"), .. Str("0"), .. Str("cpu"), (byte)'K', 2, (byte)'t', (byte)'Q'];
        byte[] pickle = [0x80, 2, (byte)'}', .. Str("w"), .. pid, (byte)'s', (byte)'.'];
        AssertRejected(Zip(NewTempDir(), "int.pth", pickle, ("0", new byte[8])), "storage type torch.IntStorage is not supported");
    }

    /// <summary>{'w': _rebuild_tensor_v2(FloatStorage '0' of <paramref name="numel"/>, offset, (size,), (1,), False, OrderedDict())}.</summary>
    private static byte[] OneTensorPickle(int numel, int offset, int size) =>
    [
        0x80, 2, (byte)'}', .. Str("w"),
        .. Global("torch._utils", "_rebuild_tensor_v2"),
        (byte)'(', (byte)'(', .. Str("storage"), .. Global("torch", "FloatStorage"), .. Str("0"), .. Str("cpu"), (byte)'K', (byte)numel, (byte)'t', (byte)'Q',
        (byte)'K', (byte)offset, (byte)'K', (byte)size, 0x85, (byte)'K', 1, 0x85, 0x89,
        .. Global("collections", "OrderedDict"), (byte)')', (byte)'R', (byte)'t', (byte)'R',
        (byte)'s', (byte)'.',
    ];

    [Test]
    public void AHandMadeStateDictLoads()
    {
        // The same bytes as the malformed cases below, but consistent: proves those fail for the stated reason.
        var data = new[] { 1f, 2f, 3f, 4f }.SelectMany(BitConverter.GetBytes).ToArray();
        using var t = new TensorSet(TorchCheckpoint.Load(Zip(NewTempDir(), "ok.pth", OneTensorPickle(4, 1, 3), ("0", data))));
        Assert.That(t.Tensors["w"].ToFloatArray(), Is.EqualTo(new[] { 2f, 3f, 4f }));
    }

    [Test]
    public void ATensorReachingPastItsStorageIsRefused()
    {
        var data = new byte[16];
        AssertRejected(Zip(NewTempDir(), "past.pth", OneTensorPickle(4, 2, 3), ("0", data)), "tensor 'w'", "reaches element 4 of storage '0', which has 4");
    }

    [Test]
    public void AMissingOrShortStorageIsRefused()
    {
        AssertRejected(Zip(NewTempDir(), "missing.pth", OneTensorPickle(4, 0, 4)), "storage '0' is missing");
        AssertRejected(Zip(NewTempDir(), "short.pth", OneTensorPickle(4, 0, 4), ("0", new byte[12])), "storage '0' has 12 bytes, its 4 Float elements need 16");
    }

    [Test]
    public void FilesThatAreNotCheckpointsAreNamed()
    {
        string dir = NewTempDir();
        string text = Path.Combine(dir, "notes.pth");
        File.WriteAllText(text, "hello");
        AssertRejected(text, "neither a zip archive", "nor a legacy pickle");
        byte[] list = [0x80, 2, (byte)']', (byte)'.'];
        AssertRejected(Zip(dir, "list.pth", list), "holds a list, not a state dict");
    }

    /// <summary>Disposes a loaded dict.</summary>
    private sealed class TensorSet(Dictionary<string, Tensor> tensors) : IDisposable
    {
        public Dictionary<string, Tensor> Tensors { get; } = tensors;
        public void Dispose() { foreach (var t in Tensors.Values) t.Dispose(); }
    }
}
