namespace MtlMoe.Engine.Amp;

/// <summary>
/// The inputs of one op as the autocast policy wants them: <c>using var ac = AutocastArgs.For("conv2d", x, w, b);</c>
/// then, when <see cref="Changed"/>, the op runs again on <c>ac[0]</c>, <c>ac[1]</c>, … (whose dtypes now satisfy the
/// policy, so the second call goes straight through). Without an autocast scope nothing is looked up or cast: the
/// float32 path is exactly what it was. Casts are recorded ops (their backward casts the gradient back), so gradients
/// reach the float32 originals; weight casts come from the scope's cache (see <see cref="Autocast"/>).
/// </summary>
internal readonly struct AutocastArgs : IDisposable
{
    private readonly Tensor?[]? _values;
    private readonly bool[]? _owned;

    private AutocastArgs(Tensor?[] values, bool[] owned, bool changed) { _values = values; _owned = owned; Changed = changed; }

    /// <summary>True when at least one input was cast (the op must run on the cast inputs).</summary>
    public bool Changed { get; }

    /// <summary>Input <paramref name="i"/> as the policy wants it (null stays null).</summary>
    public Tensor? this[int i] => _values![i];

    /// <summary>Input <paramref name="i"/>, which the caller passed non-null.</summary>
    public Tensor At(int i) => _values![i]!;

    /// <summary>
    /// Applies <see cref="AutocastPolicy.CastFor(string, IReadOnlyList{DType})"/> for <paramref name="op"/> to the non-null
    /// inputs (in order) under the current scope; an op without a policy entry is an error naming it.
    /// </summary>
    public static AutocastArgs For(string op, params Tensor?[] inputs)
    {
        if (!Autocast.IsEnabled) return default;
        var present = new List<DType>(inputs.Length);
        foreach (var t in inputs) if (t is not null) present.Add(t.DType);
        var want = AutocastPolicy.CastFor(op, present);
        var values = new Tensor?[inputs.Length];
        var owned = new bool[inputs.Length];
        bool changed = false;
        for (int i = 0, j = 0; i < inputs.Length; i++)
        {
            var t = inputs[i];
            if (t is null) continue;
            var to = want[j++];
            if (to == t.DType) { values[i] = t; continue; }
            values[i] = Autocast.CastForOp(t, to, out owned[i]);
            changed = true;
        }
        return new AutocastArgs(values, owned, changed);
    }

    /// <summary>Disposes the casts this call made (weight casts belong to the scope's cache).</summary>
    public void Dispose()
    {
        if (_values is null) return;
        for (int i = 0; i < _values.Length; i++)
            if (_owned![i]) _values[i]?.Dispose();
    }
}
