namespace MtlMoe.Engine.IO.Torch;

/// <summary>A torch checkpoint's problem: the message names the file and what is wrong (or which global was refused).</summary>
public sealed class TorchFormatException(string message) : FormatException(message);

/// <summary>A global the pickle named (module and attribute), on the allowed list; never imported or called.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A dict or OrderedDict in insertion order (the pickle's keys are strings for a state dict).</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = new();
    public void Set(object? key, object? value)
    {
        for (int i = 0; i < Items.Count; i++)
            if (Equals(Items[i].Key, key)) { Items[i] = new(key, value); return; }
        Items.Add(new(key, value));
    }
}

/// <summary>The marker MARK pushes.</summary>
internal sealed class PickleMark
{
    public static readonly PickleMark Instance = new();
}

/// <summary>
/// One storage a persistent id names: its element type, key (a zip entry data/&lt;key&gt; or a legacy record) and
/// element count.
/// </summary>
internal sealed record StorageRef(TorchStorageType Type, string Key, long Numel);

/// <summary>The storage element types a state dict of tensors may use.</summary>
internal enum TorchStorageType { Float, Half, BFloat16, Long }

/// <summary>A tensor as _rebuild_tensor_v2 describes it: a view (offset, sizes, strides) of a storage; made real after the pickle is read.</summary>
internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Sizes, long[] Strides);
