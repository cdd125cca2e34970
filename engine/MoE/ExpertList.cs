using MtlMoe.Engine.NN;

namespace MtlMoe.Engine.MoE;

/// <summary>Holds the experts as children "0", "1", … (parameter names "experts.0.weight", …); it has no forward of its own.</summary>
public sealed class ExpertList : Module
{
    private readonly List<Module> _experts = new();

    /// <summary>A list of <paramref name="experts"/>.</summary>
    public ExpertList(IEnumerable<Module> experts)
    {
        foreach (var m in experts)
        {
            RegisterModule(_experts.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), m);
            _experts.Add(m);
        }
    }

    /// <summary>Number of experts.</summary>
    public int Count => _experts.Count;

    /// <summary>Expert <paramref name="i"/>.</summary>
    public Module this[int i] => _experts[i];

    /// <summary>Not supported: experts run on their own slices (see <see cref="MoeLayer"/>).</summary>
    public override Tensor Forward(Tensor x) => throw new NotSupportedException("moe experts: an ExpertList has no forward; MoeLayer runs each expert on its rows");
}
