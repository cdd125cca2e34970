using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Runtime.InteropServices;

namespace MtlMoe.Engine.IO.Torch;

/// <summary>
/// Reads a PyTorch <c>torch.save(state_dict)</c> file without running any of it: the zip format (since 1.6:
/// <c>&lt;name&gt;/data.pkl</c> with storages in <c>&lt;name&gt;/data/&lt;key&gt;</c>, optional <c>byteorder</c>)
/// and the legacy format (five pickles — magic number, protocol 1001, system info, the object, the storage keys
/// — then each storage as an int64 element count and its bytes). The object pickle goes through a restricted
/// <see cref="Unpickler"/>; tensors may share storages, start at offsets and have any strides (they are
/// materialised contiguous); float16 and bfloat16 become float32, int64 stays int64. Nested dicts give dotted
/// names ("state_dict.conv1.weight"); entries that are not tensors (an "epoch" number) are listed as ignored.
/// Every problem is one <see cref="TorchFormatException"/> naming the file; no tensor is returned half-made.
/// </summary>
public static class TorchCheckpoint
{
    private static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");  // 0x1950a86a20f9469cfc6c
    private const long LegacyProtocol = 1001;

    /// <summary>The tensors of <paramref name="path"/> by name (CPU; the caller disposes them).</summary>
    public static Dictionary<string, Tensor> Load(string path) => Load(path, out _);

    /// <summary>The tensors of <paramref name="path"/>, and the names of entries that were not tensors.</summary>
    public static Dictionary<string, Tensor> Load(string path, out IReadOnlyList<string> ignored)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"torch checkpoint '{path}' not found", path);
        byte[] head = new byte[4];
        int got;
        using (var fs = File.OpenRead(path)) got = fs.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        StorageSource storages;
        object? root;
        if (got == 4 && head.AsSpan().SequenceEqual("PK\u0003\u0004"u8)) (root, storages) = ReadZip(path);
        else if (got >= 2 && head[0] == 0x80) (root, storages) = ReadLegacy(path);
        else throw new TorchFormatException($"torch checkpoint '{path}': neither a zip archive (torch.save since 1.6) nor a legacy pickle (it starts with {Convert.ToHexString(head, 0, got)})");

        var refs = new List<(string Name, TensorRef Ref)>();
        var skipped = new List<string>();
        if (root is not PickleDict dict) throw new TorchFormatException($"torch checkpoint '{path}': holds a {Unpickler.Describe(root)}, not a state dict (a dict of tensors)");
        Collect(path, dict, "", refs, skipped);
        if (refs.Count == 0) throw new TorchFormatException($"torch checkpoint '{path}': the dict holds no tensors");
        ignored = skipped;

        var result = new Dictionary<string, Tensor>(refs.Count, StringComparer.Ordinal);
        try
        {
            foreach (var (name, r) in refs)
            {
                if (result.ContainsKey(name)) throw new TorchFormatException($"torch checkpoint '{path}': the name '{name}' appears twice");
                result[name] = DisposeScope.Outside(() => Materialise(path, name, r, storages.Get(r.Storage)));
            }
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    private static void Collect(string path, PickleDict d, string prefix, List<(string, TensorRef)> refs, List<string> skipped)
    {
        foreach (var (k, v) in d.Items)
        {
            if (k is not string key) throw new TorchFormatException($"torch checkpoint '{path}': a key is a {Unpickler.Describe(k)}, not a string");
            string name = prefix + key;
            switch (v)
            {
                case TensorRef t: refs.Add((name, t)); break;
                case PickleDict inner: Collect(path, inner, name + ".", refs, skipped); break;
                default: skipped.Add(name); break;
            }
        }
    }

    /// <summary>Where storage bytes come from: zip entries or the legacy file's records.</summary>
    private sealed class StorageSource(string path, Func<string, byte[]?> read)
    {
        private readonly Dictionary<string, byte[]> _cache = new(StringComparer.Ordinal);

        public byte[] Get(StorageRef s)
        {
            if (!_cache.TryGetValue(s.Key, out var bytes))
            {
                bytes = read(s.Key) ?? throw new TorchFormatException($"torch checkpoint '{path}': storage '{s.Key}' is missing");
                _cache[s.Key] = bytes;
            }
            long need = s.Numel * ElementSize(s.Type);
            if (bytes.Length < need) throw new TorchFormatException($"torch checkpoint '{path}': storage '{s.Key}' has {bytes.Length} bytes, its {s.Numel} {s.Type} elements need {need}");
            return bytes;
        }
    }

    private static int ElementSize(TorchStorageType t) => t switch { TorchStorageType.Float => 4, TorchStorageType.Long => 8, _ => 2 };

    private static TorchStorageType StorageType(object? type, string where) => type switch
    {
        PickleGlobal { Module: "torch", Name: "FloatStorage" } => TorchStorageType.Float,
        PickleGlobal { Module: "torch", Name: "HalfStorage" } => TorchStorageType.Half,
        PickleGlobal { Module: "torch", Name: "BFloat16Storage" } => TorchStorageType.BFloat16,
        PickleGlobal { Module: "torch", Name: "LongStorage" } => TorchStorageType.Long,
        _ => throw new TorchFormatException($"{where}: the storage type is a {Unpickler.Describe(type)}"),
    };

    private static (object? Root, StorageSource Storages) ReadZip(string path)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var pkl = zip.Entries.Where(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
            if (pkl.Count != 1) throw new TorchFormatException($"torch checkpoint '{path}': expected one <name>/data.pkl in the zip, found {pkl.Count}");
            string prefix = pkl[0].FullName[..^"data.pkl".Length];
            var byteOrder = zip.GetEntry(prefix + "byteorder");
            if (byteOrder is not null)
            {
                var order = System.Text.Encoding.ASCII.GetString(ReadEntry(byteOrder));
                if (order != "little") throw new TorchFormatException($"torch checkpoint '{path}': byte order '{order}' is not supported (only little-endian)");
            }
            var data = ReadEntry(pkl[0]);
            string source = $"torch checkpoint '{path}' ({pkl[0].FullName})";
            var root = new Unpickler(data, 0, source, ZipStorage).Load();
            // Storages are read now, while the archive is open; only those the tensors name.
            var bytes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var key in StorageKeys(root))
            {
                var e = zip.GetEntry(prefix + "data/" + key);
                if (e is not null) bytes[key] = ReadEntry(e);
            }
            return (root, new StorageSource(path, k => bytes.GetValueOrDefault(k)));
        }
        catch (InvalidDataException e) { throw new TorchFormatException($"torch checkpoint '{path}': not a readable zip archive ({e.Message}); is the file truncated?"); }
        catch (EndOfStreamException e) { throw new TorchFormatException($"torch checkpoint '{path}': the zip archive ends early ({e.Message}); is the file truncated?"); }
    }

    private static byte[] ReadEntry(ZipArchiveEntry e)
    {
        if (e.Length > int.MaxValue) throw new InvalidDataException($"entry {e.FullName} is {e.Length} bytes");
        var b = new byte[e.Length];
        using var s = e.Open();
        s.ReadExactly(b);
        return b;
    }

    private static IEnumerable<string> StorageKeys(object? root)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        void Walk(object? v)
        {
            if (v is TensorRef t) keys.Add(t.Storage.Key);
            else if (v is PickleDict d) foreach (var (_, x) in d.Items) Walk(x);
        }
        Walk(root);
        return keys;
    }

    // ('storage', storage_type, key, location, numel)
    private static StorageRef ZipStorage(object?[] pid)
    {
        if (pid.Length != 5 || pid[0] as string != "storage") throw new TorchFormatException($"a persistent id is not ('storage', type, key, location, numel) but has {pid.Length} fields");
        var type = StorageType(pid[1], "a persistent id");
        if (pid[2] is not string key || key.Length == 0 || key.Contains('/') || key.Contains('\\')) throw new TorchFormatException("a persistent id's storage key is not a plain name");
        if (pid[4] is not long numel || numel < 0) throw new TorchFormatException($"storage '{key}' has a bad element count");
        return new StorageRef(type, key, numel);
    }

    private static (object? Root, StorageSource Storages) ReadLegacy(string path)
    {
        var data = File.ReadAllBytes(path);
        string source = $"torch checkpoint '{path}' (legacy format)";
        StorageRef Refuse(object?[] _) => throw new TorchFormatException("a persistent id outside the object pickle");
        var u = new Unpickler(data, 0, source, Refuse);
        var magic = u.Load();
        bool magicOk = magic is BigInteger b && b == LegacyMagic;
        if (!magicOk) throw new TorchFormatException($"{source}: a pickle that is not a torch checkpoint (no legacy magic number)");
        if (u.Load() is not long protocol || protocol != LegacyProtocol) throw new TorchFormatException($"{source}: unsupported legacy protocol version");
        if (u.Load() is PickleDict sys && sys.Items.FirstOrDefault(kv => kv.Key as string == "little_endian").Value is false)
            throw new TorchFormatException($"{source}: written on a big-endian machine, which is not supported");
        int objectStart = u.Position;
        var declared = new Dictionary<string, StorageRef>(StringComparer.Ordinal);
        var main = new Unpickler(data, objectStart, source, pid =>
        {
            // ('storage', storage_type, root_key, location, numel, view_metadata)
            if (pid.Length != 6 || pid[0] as string != "storage") throw new TorchFormatException($"a persistent id is not ('storage', type, key, location, numel, view) but has {pid.Length} fields");
            var type = StorageType(pid[1], "a persistent id");
            if (pid[2] is not string key) throw new TorchFormatException("a persistent id's storage key is not a string");
            if (pid[4] is not long numel || numel < 0) throw new TorchFormatException($"storage '{key}' has a bad element count");
            if (pid[5] is not null) throw new TorchFormatException($"storage '{key}' is a legacy storage view, which is not supported");
            var r = new StorageRef(type, key, numel);
            if (declared.TryGetValue(key, out var prev) && prev != r) throw new TorchFormatException($"storage '{key}' is declared twice with different types or sizes");
            declared[key] = r;
            return r;
        });
        var root = main.Load();
        var keyList = new Unpickler(data, main.Position, source, Refuse);
        if (keyList.Load() is not List<object?> keys || keys.Any(k => k is not string)) throw new TorchFormatException($"{source}: the storage key list is not a list of strings");
        int pos = keyList.Position;
        var bytes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (string key in keys.Cast<string>())
        {
            if (!declared.TryGetValue(key, out var r)) throw new TorchFormatException($"{source}: storage '{key}' is listed but no tensor uses it");
            if (data.Length - pos < 8) throw new TorchFormatException($"{source}: the file ends before storage '{key}' (truncated?)");
            long numel = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(pos));
            pos += 8;
            long n = numel * ElementSize(r.Type);
            if (numel != r.Numel) throw new TorchFormatException($"{source}: storage '{key}' records {numel} elements, its persistent id {r.Numel}");
            if (n > data.Length - pos) throw new TorchFormatException($"{source}: the file ends inside storage '{key}' (truncated?)");
            bytes[key] = data.AsSpan(pos, (int)n).ToArray();
            pos += (int)n;
        }
        return (root, new StorageSource(path, k => bytes.GetValueOrDefault(k)));
    }

    /// <summary>Copies the view (offset, sizes, strides) of a storage into a new contiguous tensor.</summary>
    private static Tensor Materialise(string path, string name, TensorRef r, byte[] storage)
    {
        long count = 1;
        foreach (var s in r.Sizes) count *= s;
        if (r.Sizes.Length > 8 || count > int.MaxValue) throw new TorchFormatException($"torch checkpoint '{path}': tensor '{name}' of shape [{string.Join(", ", r.Sizes)}] is too large");
        long last = r.Offset;
        for (int d = 0; d < r.Sizes.Length; d++) if (r.Sizes[d] > 0) last += (r.Sizes[d] - 1) * r.Strides[d];
        if (count > 0 && last >= r.Storage.Numel)
            throw new TorchFormatException($"torch checkpoint '{path}': tensor '{name}' (offset {r.Offset}, shape [{string.Join(", ", r.Sizes)}], strides [{string.Join(", ", r.Strides)}]) reaches element {last} of storage '{r.Storage.Key}', which has {r.Storage.Numel}");
        var shape = r.Sizes.Select(s => (int)s).ToArray();
        var index = Offsets(r, (int)count);
        switch (r.Storage.Type)
        {
            case TorchStorageType.Long:
            {
                var src = MemoryMarshal.Cast<byte, long>(storage.AsSpan());
                var a = new long[count];
                for (int i = 0; i < a.Length; i++) a[i] = src[(int)index[i]];
                return Tensor.FromArray(a, shape);
            }
            case TorchStorageType.Float:
            {
                var src = MemoryMarshal.Cast<byte, float>(storage.AsSpan());
                var a = new float[count];
                for (int i = 0; i < a.Length; i++) a[i] = src[(int)index[i]];
                return Tensor.FromArray(a, shape);
            }
            default:
            {
                var src = MemoryMarshal.Cast<byte, ushort>(storage.AsSpan());
                bool half = r.Storage.Type == TorchStorageType.Half;
                var a = new float[count];
                for (int i = 0; i < a.Length; i++)
                {
                    ushort bits = src[(int)index[i]];
                    a[i] = half ? (float)BitConverter.UInt16BitsToHalf(bits) : BitConverter.Int32BitsToSingle(bits << 16);
                }
                return Tensor.FromArray(a, shape);
            }
        }
    }

    // Storage element of every tensor element in row-major order (an odometer over the sizes).
    private static long[] Offsets(TensorRef r, int count)
    {
        var result = new long[count];
        int rank = r.Sizes.Length;
        var idx = new long[rank];
        long at = r.Offset;
        for (int i = 0; i < count; i++)
        {
            result[i] = at;
            for (int d = rank - 1; d >= 0; d--)
            {
                idx[d]++;
                at += r.Strides[d];
                if (idx[d] < r.Sizes[d]) break;
                at -= idx[d] * r.Strides[d];
                idx[d] = 0;
            }
        }
        return result;
    }
}
