using MtlMoe.Engine;

namespace MtlMoe.Model.Data;

/// <summary>Tail outline.</summary>
public enum TailShape { Pointed, Square, Forked, Rounded }

/// <summary>Pattern on the breast.</summary>
public enum BreastPattern { Plain, Spotted, Streaked, Barred }

/// <summary>
/// The attributes that define one synthetic species. Siblings in a family share the body colour and differ in
/// one or two of the subtle attributes (wing bar, beak length, crown, eye ring, breast pattern, tail shape).
/// </summary>
public sealed record BirdSpecies(int Family, int WingBar, int BeakLength, int Crown, bool EyeRing, BreastPattern Breast, TailShape Tail)
{
    internal static readonly string[] FamilyNames = ["Olive", "Slate", "Russet", "Sandy"];
    internal static readonly Rgb[] FamilyBody = [Rgb.Bytes(112, 118, 62), Rgb.Bytes(96, 106, 124), Rgb.Bytes(140, 84, 52), Rgb.Bytes(170, 146, 104)];
    internal static readonly string[] WingBarNames = ["Plainwing", "Whitebar", "Yellowbar", "Rufousbar"];
    internal static readonly Rgb?[] WingBarColor = [null, Rgb.Bytes(240, 240, 232), Rgb.Bytes(236, 206, 60), Rgb.Bytes(190, 92, 40)];
    internal static readonly string[] BeakNames = ["Shortbill", "Bill", "Longbill"];
    internal static readonly float[] BeakLen = [0.09f, 0.17f, 0.29f];
    internal static readonly string[] CrownNames = ["", "Redcap", "Blackcap", "Bluecap", "Goldcap"];
    internal static readonly Rgb?[] CrownColor = [null, Rgb.Bytes(200, 30, 30), Rgb.Bytes(25, 25, 28), Rgb.Bytes(50, 90, 200), Rgb.Bytes(240, 190, 30)];

    /// <summary>A CUB-style class name made of the attributes, e.g. "Slate_Redcap_Whitebar_Longbill_Ringed_Spotted_Forktail".</summary>
    public string Name
    {
        get
        {
            var parts = new List<string> { FamilyNames[Family] };
            if (CrownNames[Crown].Length > 0) parts.Add(CrownNames[Crown]);
            parts.Add(WingBarNames[WingBar]);
            parts.Add(BeakNames[BeakLength]);
            if (EyeRing) parts.Add("Ringed");
            parts.Add(Breast.ToString());
            parts.Add(Tail + "tail");
            return string.Join('_', parts);
        }
    }

    /// <summary>
    /// The species of a set: families of five; the first of each family is drawn at random, the others copy an
    /// earlier sibling and change one or two subtle attributes (never the family), all distinct.
    /// </summary>
    public static BirdSpecies[] Create(int classes, ulong seed)
    {
        var rng = new Rng(seed ^ 0xB1D5_5EED_0000_0001UL);
        var list = new List<BirdSpecies>();
        var seen = new HashSet<BirdSpecies>();
        for (int k = 0; k < classes; k++)
        {
            int family = (k / 5) % FamilyNames.Length;
            BirdSpecies s;
            int tries = 0;
            do
            {
                if (k % 5 == 0 || tries > 50) s = Random(rng, family);
                else
                {
                    s = list[rng.NextInt(k % 5) + k - k % 5];
                    int changes = rng.NextDouble() < 0.6 ? 1 : 2;
                    for (int i = 0; i < changes; i++) s = Mutate(s, rng);
                }
                tries++;
            } while (!seen.Add(s));
            list.Add(s);
        }
        return list.ToArray();
    }

    private static BirdSpecies Random(Rng r, int family)
        => new(family, r.NextInt(4), r.NextInt(3), r.NextInt(5), r.NextInt(2) == 1, (BreastPattern)r.NextInt(4), (TailShape)r.NextInt(4));

    private static BirdSpecies Mutate(BirdSpecies s, Rng r) => r.NextInt(6) switch
    {
        0 => s with { WingBar = (s.WingBar + 1 + r.NextInt(3)) % 4 },
        1 => s with { BeakLength = (s.BeakLength + 1 + r.NextInt(2)) % 3 },
        2 => s with { Crown = (s.Crown + 1 + r.NextInt(4)) % 5 },
        3 => s with { EyeRing = !s.EyeRing },
        4 => s with { Breast = (BreastPattern)(((int)s.Breast + 1 + r.NextInt(3)) % 4) },
        _ => s with { Tail = (TailShape)(((int)s.Tail + 1 + r.NextInt(3)) % 4) },
    };
}
