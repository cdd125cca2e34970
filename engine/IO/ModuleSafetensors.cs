using MtlMoe.Engine.NN;

namespace MtlMoe.Engine.IO;

/// <summary>Saving and loading a module's state dict (parameters and buffers, dotted names) as safetensors.</summary>
public static class ModuleSafetensors
{
    /// <summary>Writes <see cref="Module.StateDict"/> to <paramref name="path"/> (atomically).</summary>
    public static void SaveSafetensors(this Module module, string path, IReadOnlyDictionary<string, string>? metadata = null)
        => Safetensors.Save(path, module.StateDict(), metadata);

    /// <summary>Loads a safetensors file into the module through <see cref="Module.LoadStateDict"/>; the loaded tensors are freed afterwards.</summary>
    public static LoadReport LoadSafetensors(this Module module, string path, bool strict = true)
    {
        var tensors = DisposeScope.Outside(() => Safetensors.Load(path));
        try { return module.LoadStateDict(tensors, strict); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }
}
