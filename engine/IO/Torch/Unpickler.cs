using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace MtlMoe.Engine.IO.Torch;

/// <summary>
/// A restricted pickle reader: it interprets the opcodes of protocols 2–4 that describe data (numbers, strings,
/// tuples, lists, dicts, memo, persistent ids) and resolves only the globals a state dict of tensors needs:
/// collections.OrderedDict, torch._utils._rebuild_tensor_v2 and _rebuild_parameter, and the storage classes
/// torch.FloatStorage, HalfStorage, BFloat16Storage and LongStorage (as a persistent id's type). Nothing is
/// imported, nothing is called: REDUCE builds one of the known values, and any other global, callable or opcode
/// (INST, OBJ, NEWOBJ, EXT*, PERSID text, …) stops the read with a <see cref="TorchFormatException"/> naming it.
/// </summary>
internal sealed class Unpickler
{
    private readonly byte[] _data;
    private readonly string _source;
    private readonly Func<object?[], StorageRef> _persistentLoad;
    private int _pos;
    private readonly List<object?> _stack = new();
    private readonly Dictionary<long, object?> _memo = new();

    /// <summary>The globals that may appear, by "module name".</summary>
    public static readonly IReadOnlySet<string> AllowedGlobals = new HashSet<string>(StringComparer.Ordinal)
    {
        "collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
        "torch FloatStorage", "torch HalfStorage", "torch BFloat16Storage", "torch LongStorage",
    };

    /// <param name="data">The bytes holding the pickle (it may be followed by other data, as in the legacy format).</param>
    /// <param name="start">Where the pickle starts.</param>
    /// <param name="source">The file (and entry) named in errors.</param>
    /// <param name="persistentLoad">Turns a persistent id tuple into a storage reference (or throws).</param>
    public Unpickler(byte[] data, int start, string source, Func<object?[], StorageRef> persistentLoad)
    {
        _data = data; _pos = start; _source = source; _persistentLoad = persistentLoad;
    }

    /// <summary>Where the next pickle starts after <see cref="Load"/> returned.</summary>
    public int Position => _pos;

    private TorchFormatException Bad(string what, int at) => new($"{_source}: {what} (pickle byte {at})");

    /// <summary>Reads one pickle up to its STOP and returns the value.</summary>
    public object? Load()
    {
        _stack.Clear();
        _memo.Clear();
        while (true)
        {
            int at = _pos;
            byte op = U8();
            switch (op)
            {
                case 0x80: { byte proto = U8(); if (proto > 5) throw Bad($"pickle protocol {proto} is not supported", at); break; } // PROTO
                case 0x95: Bytes(8); break;                                                          // FRAME: a length hint
                case (byte)'.':                                                                       // STOP
                    if (_stack.Count != 1) throw Bad($"STOP with {_stack.Count} values on the stack", at);
                    return Pop(at);
                case (byte)'(': _stack.Add(PickleMark.Instance); break;                               // MARK
                case (byte)'0': Pop(at); break;                                                       // POP
                case (byte)'1': PopMark(at); break;                                                   // POP_MARK
                case (byte)'2': _stack.Add(Peek(at)); break;                                          // DUP
                case (byte)'N': _stack.Add(null); break;                                              // NONE
                case 0x88: _stack.Add(true); break;                                                   // NEWTRUE
                case 0x89: _stack.Add(false); break;                                                  // NEWFALSE
                case (byte)'J': _stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break; // BININT
                case (byte)'K': _stack.Add((long)U8()); break;                                        // BININT1
                case (byte)'M': _stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break; // BININT2
                case 0x8a: _stack.Add(Long(U8(), at)); break;                                         // LONG1
                case 0x8b: _stack.Add(Long(Length(BinaryPrimitives.ReadInt32LittleEndian(Bytes(4)), at), at)); break; // LONG4
                case (byte)'G': _stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break;    // BINFLOAT
                case (byte)'X': _stack.Add(Utf8(Length(BinaryPrimitives.ReadInt32LittleEndian(Bytes(4)), at), at)); break; // BINUNICODE
                case 0x8c: _stack.Add(Utf8(U8(), at)); break;                                         // SHORT_BINUNICODE
                case 0x8d: _stack.Add(Utf8(Length(BinaryPrimitives.ReadInt64LittleEndian(Bytes(8)), at), at)); break; // BINUNICODE8
                case (byte)'T': _stack.Add(Latin1(Length(BinaryPrimitives.ReadInt32LittleEndian(Bytes(4)), at))); break; // BINSTRING
                case (byte)'U': _stack.Add(Latin1(U8())); break;                                      // SHORT_BINSTRING
                case (byte)'B': _stack.Add(Bytes(Length(BinaryPrimitives.ReadInt32LittleEndian(Bytes(4)), at)).ToArray()); break; // BINBYTES
                case (byte)'C': _stack.Add(Bytes(U8()).ToArray()); break;                             // SHORT_BINBYTES
                case (byte)')': _stack.Add(Array.Empty<object?>()); break;                            // EMPTY_TUPLE
                case (byte)'t': _stack.Add(PopMark(at).ToArray()); break;                             // TUPLE
                case 0x85: { var a = Pop(at); _stack.Add(new[] { a }); break; }                       // TUPLE1
                case 0x86: { var b = Pop(at); var a = Pop(at); _stack.Add(new[] { a, b }); break; }   // TUPLE2
                case 0x87: { var c = Pop(at); var b = Pop(at); var a = Pop(at); _stack.Add(new[] { a, b, c }); break; } // TUPLE3
                case (byte)']': _stack.Add(new List<object?>()); break;                               // EMPTY_LIST
                case (byte)'l': _stack.Add(PopMark(at)); break;                                       // LIST
                case (byte)'a': { var v = Pop(at); AsList(Peek(at), at).Add(v); break; }              // APPEND
                case (byte)'e': { var items = PopMark(at); AsList(Peek(at), at).AddRange(items); break; } // APPENDS
                case (byte)'}': _stack.Add(new PickleDict()); break;                                  // EMPTY_DICT
                case (byte)'d': { var items = PopMark(at); var d = new PickleDict(); AddPairs(d, items, at); _stack.Add(d); break; } // DICT
                case (byte)'s': { var v = Pop(at); var k = Pop(at); AsDict(Peek(at), at).Set(k, v); break; } // SETITEM
                case (byte)'u': { var items = PopMark(at); AddPairs(AsDict(Peek(at), at), items, at); break; } // SETITEMS
                case (byte)'c': _stack.Add(Global(Line(at), Line(at), at)); break;                    // GLOBAL
                case 0x93: { var name = Pop(at); var module = Pop(at); _stack.Add(Global(module as string ?? throw Bad("STACK_GLOBAL needs two strings", at), name as string ?? throw Bad("STACK_GLOBAL needs two strings", at), at)); break; } // STACK_GLOBAL
                case (byte)'R': { var args = Pop(at); var f = Pop(at); _stack.Add(Reduce(f, args, at)); break; } // REDUCE
                case (byte)'b': { var state = Pop(at); Build(Peek(at), state, at); break; }          // BUILD
                case (byte)'Q': { var pid = Pop(at); _stack.Add(Persistent(pid, at)); break; }       // BINPERSID
                case (byte)'h': _stack.Add(MemoGet(U8(), at)); break;                                 // BINGET
                case (byte)'j': _stack.Add(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)), at)); break; // LONG_BINGET
                case (byte)'q': _memo[U8()] = Peek(at); break;                                        // BINPUT
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))] = Peek(at); break; // LONG_BINPUT
                case 0x94: _memo[_memo.Count] = Peek(at); break;                                      // MEMOIZE
                default:
                    throw Bad($"pickle opcode 0x{op:x2}{(op is >= 0x20 and < 0x7f ? $" ('{(char)op}')" : "")} is not allowed: only the data opcodes a state dict of tensors uses are read", at);
            }
        }
    }

    private byte U8()
    {
        if (_pos >= _data.Length) throw Bad("the pickle ends before its STOP opcode (truncated file?)", _pos);
        return _data[_pos++];
    }

    private ReadOnlySpan<byte> Bytes(int n)
    {
        if (n < 0 || _data.Length - _pos < n) throw Bad($"the pickle ends inside a {n}-byte value (truncated file?)", _pos);
        var s = _data.AsSpan(_pos, n);
        _pos += n;
        return s;
    }

    private int Length(long n, int at) => n >= 0 && n <= _data.Length - _pos ? (int)n : throw Bad($"length {n} runs past the end of the pickle", at);

    private string Utf8(int n, int at)
    {
        try { return new UTF8Encoding(false, true).GetString(Bytes(n)); }
        catch (DecoderFallbackException) { throw Bad("a string is not valid UTF-8", at); }
    }

    private string Latin1(int n) => Encoding.Latin1.GetString(Bytes(n));

    private object Long(int n, int at)
    {
        var b = Bytes(n);
        if (n == 0) return 0L;
        if (n <= 8)
        {
            long v = 0;
            for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
            int unused = 64 - 8 * n;
            return unused == 0 ? v : v << unused >> unused;  // sign-extend
        }
        if (n > 64) throw Bad($"an integer of {n} bytes is too long", at);
        return new BigInteger(b, isUnsigned: false, isBigEndian: false);
    }

    private string Line(int at)
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0 || end - _pos > 256) throw Bad("GLOBAL's module or name is not a line of at most 256 bytes", at);
        var s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private object? Pop(int at)
    {
        if (_stack.Count == 0 || _stack[^1] is PickleMark) throw Bad("stack underflow", at);
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek(int at) => _stack.Count == 0 || _stack[^1] is PickleMark ? throw Bad("stack underflow", at) : _stack[^1];

    private List<object?> PopMark(int at)
    {
        int m = _stack.FindLastIndex(v => v is PickleMark);
        if (m < 0) throw Bad("no MARK on the stack", at);
        var items = _stack.GetRange(m + 1, _stack.Count - m - 1);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private List<object?> AsList(object? v, int at) => v as List<object?> ?? throw Bad($"APPEND to a {Describe(v)}, not a list", at);
    private PickleDict AsDict(object? v, int at) => v as PickleDict ?? throw Bad($"SETITEM on a {Describe(v)}, not a dict", at);

    private void AddPairs(PickleDict d, List<object?> items, int at)
    {
        if (items.Count % 2 != 0) throw Bad("a dict has an odd number of keys and values", at);
        for (int i = 0; i < items.Count; i += 2) d.Set(items[i], items[i + 1]);
    }

    private object? MemoGet(long key, int at) => _memo.TryGetValue(key, out var v) ? v : throw Bad($"memo entry {key} was never stored", at);

    private PickleGlobal Global(string module, string name, int at)
    {
        if (module == "torch" && name.EndsWith("Storage", StringComparison.Ordinal) && !AllowedGlobals.Contains(module + " " + name))
            throw Bad($"storage type torch.{name} is not supported (FloatStorage, HalfStorage, BFloat16Storage and LongStorage are)", at);
        if (!AllowedGlobals.Contains(module + " " + name))
            throw Bad($"refused the global '{module}.{name}': a pickle can run code, so only the globals of a state dict of tensors are accepted " +
                      "(collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.FloatStorage, HalfStorage, BFloat16Storage, LongStorage); nothing was executed", at);
        return new PickleGlobal(module, name);
    }

    private object? Reduce(object? f, object? args, int at)
    {
        if (f is not PickleGlobal g) throw Bad($"REDUCE of a {Describe(f)}: only known globals may be called", at);
        if (args is not object?[] a) throw Bad($"REDUCE of {g} with {Describe(args)} arguments, not a tuple", at);
        switch (g.Module + " " + g.Name)
        {
            case "collections OrderedDict":
                if (a.Length != 0) throw Bad($"collections.OrderedDict with {a.Length} arguments (a state dict has none)", at);
                return new PickleDict();
            case "torch._utils _rebuild_tensor_v2":
                return RebuildTensor(a, at);
            case "torch._utils _rebuild_parameter":
                // (data, requires_grad, backward_hooks): a parameter is its data here.
                if (a.Length < 1 || a[0] is not TensorRef t) throw Bad("torch._utils._rebuild_parameter without a tensor", at);
                return t;
            default:
                throw Bad($"{g} cannot be called (it may only name a storage type)", at);
        }
    }

    private TensorRef RebuildTensor(object?[] a, int at)
    {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.Length is < 4 or > 7) throw Bad($"torch._utils._rebuild_tensor_v2 with {a.Length} arguments", at);
        if (a[0] is not StorageRef s) throw Bad($"torch._utils._rebuild_tensor_v2: the first argument is a {Describe(a[0])}, not a storage", at);
        if (a[1] is not long offset || offset < 0) throw Bad("torch._utils._rebuild_tensor_v2: bad storage offset", at);
        var sizes = Longs(a[2], "size", at);
        var strides = Longs(a[3], "stride", at);
        if (sizes.Length != strides.Length) throw Bad($"torch._utils._rebuild_tensor_v2: {sizes.Length} sizes but {strides.Length} strides", at);
        return new TensorRef(s, offset, sizes, strides);
    }

    private long[] Longs(object? v, string what, int at)
    {
        if (v is not object?[] t) throw Bad($"torch._utils._rebuild_tensor_v2: {what} is a {Describe(v)}, not a tuple", at);
        var r = new long[t.Length];
        for (int i = 0; i < t.Length; i++)
            r[i] = t[i] is long x && x >= 0 ? x : throw Bad($"torch._utils._rebuild_tensor_v2: {what}[{i}] is not a non-negative integer", at);
        return r;
    }

    private void Build(object? target, object? state, int at)
    {
        // OrderedDict's pickle sets its __dict__ (a state dict's "_metadata": module versions) — kept out of the result.
        if (target is PickleDict && state is PickleDict or null) return;
        throw Bad($"BUILD of a {Describe(target)} (only a state dict's metadata may be set)", at);
    }

    private StorageRef Persistent(object? pid, int at)
    {
        if (pid is not object?[] t) throw Bad($"a persistent id is a {Describe(pid)}, not a tuple", at);
        try { return _persistentLoad(t); }
        catch (TorchFormatException e) { throw Bad(e.Message, at); }
    }

    /// <summary>The Python-ish kind of a value, for messages.</summary>
    internal static string Describe(object? v) => v switch
    {
        null => "None",
        long or BigInteger => "int",
        double => "float",
        string => "str",
        bool => "bool",
        byte[] => "bytes",
        object?[] => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        PickleGlobal g => g.ToString(),
        StorageRef => "storage",
        TensorRef => "tensor",
        _ => v.GetType().Name,
    };
}
