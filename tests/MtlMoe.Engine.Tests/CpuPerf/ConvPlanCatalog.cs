using MtlMoe.Engine.Backends;

namespace MtlMoe.Tests.CpuPerf;

/// <summary>One conv2d problem: x [N, C, H, W], w [O, C/G, Kh, Kw] and the geometry.</summary>
public sealed record ConvCase(int N, int C, int H, int W, int O, int Kh, int Kw, Conv2dGeometry Geo)
{
    /// <summary>x's shape.</summary>
    public int[] XShape => [N, C, H, W];
    /// <summary>w's shape.</summary>
    public int[] WShape => [O, C / Geo.Groups, Kh, Kw];

    /// <summary>"N C H W O Kh Kw sh sw ph pw dh dw g": the key of a line of the expected-choice table.</summary>
    public string Key => $"{N} {C} {H} {W} {O} {Kh} {Kw} {Geo.StrideH} {Geo.StrideW} {Geo.PadH} {Geo.PadW} {Geo.DilationH} {Geo.DilationW} {Geo.Groups}";
}

/// <summary>
/// The conv problems the algorithm-table test runs over: every conv of ResNet-18/34/50 (the model's layout: 7×7 stride-2
/// stem, 3×3/2 max-pool, basic or bottleneck blocks with the stride on the 3×3 and a 1×1 downsampling shortcut) at
/// 112², 128², 224² and 448² inputs and batch 1, 16 and 32, plus odd shapes that exercise every applicability edge
/// (groups, dilation, non-square planes and kernels, stride 3, kernels past 7×7, tiny planes, an empty batch).
/// </summary>
public static class ConvPlanCatalog
{
    public static IReadOnlyList<ConvCase> All()
    {
        var seen = new HashSet<string>();
        var list = new List<ConvCase>();
        void Add(ConvCase c) { if (seen.Add(c.Key)) list.Add(c); }
        foreach (int res in new[] { 112, 128, 224, 448 })
            foreach (int n in new[] { 1, 16, 32 })
                foreach (var (blocks, bottleneck) in new[] { (new[] { 2, 2, 2, 2 }, false), (new[] { 3, 4, 6, 3 }, false), (new[] { 3, 4, 6, 3 }, true) })
                    foreach (var c in ResNet(res, n, blocks, bottleneck)) Add(c);
        foreach (var c in Odd()) Add(c);
        return list;
    }

    static ConvCase Sq(int n, int c, int h, int o, int k, int stride, int pad) => new(n, c, h, h, o, k, k, Conv2dGeometry.Square(stride, pad));

    static IEnumerable<ConvCase> ResNet(int res, int n, int[] blocks, bool bottleneck)
    {
        yield return Sq(n, 3, res, 64, 7, 2, 3);
        int h = (res + 6 - 7) / 2 + 1;  // stem
        h = (h + 2 - 3) / 2 + 1;        // max-pool 3/2/1
        int inPlanes = 64, expansion = bottleneck ? 4 : 1;
        int[] planes = [64, 128, 256, 512];
        for (int s = 0; s < 4; s++)
            for (int b = 0; b < blocks[s]; b++)
            {
                int stride = b == 0 && s > 0 ? 2 : 1, p = planes[s], outPlanes = p * expansion, ho = (h - 1) / stride + 1;
                if (bottleneck)
                {
                    yield return Sq(n, inPlanes, h, p, 1, 1, 0);
                    yield return Sq(n, p, h, p, 3, stride, 1);
                    yield return Sq(n, p, ho, outPlanes, 1, 1, 0);
                }
                else
                {
                    yield return Sq(n, inPlanes, h, p, 3, stride, 1);
                    yield return Sq(n, p, ho, p, 3, 1, 1);
                }
                if (stride != 1 || inPlanes != outPlanes) yield return Sq(n, inPlanes, h, outPlanes, 1, stride, 0);
                inPlanes = outPlanes;
                h = ho;
            }
    }

    static IEnumerable<ConvCase> Odd()
    {
        foreach (int n in new[] { 1, 2, 8 })
        {
            yield return new(n, 8, 9, 11, 16, 3, 3, Conv2dGeometry.Square(1, 1));           // non-square plane
            yield return Sq(n, 16, 3, 32, 3, 1, 1);                                           // 3² plane: lanes poorly used
            yield return Sq(n, 16, 5, 32, 3, 1, 1);
            yield return Sq(n, 6, 10, 12, 3, 1, 1) with { Geo = Conv2dGeometry.Square(1, 1, 1, 2) }; // groups
            yield return Sq(n, 8, 12, 8, 3, 1, 2) with { Geo = Conv2dGeometry.Square(1, 2, 2) };     // dilation 2
            yield return Sq(n, 8, 12, 8, 5, 1, 2);                                            // 5×5
            yield return Sq(n, 8, 12, 8, 3, 1, 0);                                            // unpadded: Wo ≠ W
            yield return Sq(n, 8, 13, 16, 3, 2, 1);                                           // odd plane, stride 2
            yield return Sq(n, 8, 13, 16, 1, 2, 0);
            yield return new(n, 3, 31, 29, 8, 7, 7, Conv2dGeometry.Square(2, 3));             // odd stem
            yield return Sq(n, 8, 12, 16, 1, 1, 0);                                           // direct 1×1
            yield return Sq(n, 8, 12, 16, 3, 3, 1);                                           // stride 3
            yield return Sq(n, 8, 12, 16, 1, 2, 1);                                           // padded 1×1 stride 2
            yield return Sq(n, 8, 12, 16, 3, 2, 0);                                           // unpadded 3×3 stride 2
            yield return Sq(n, 8, 12, 16, 5, 2, 2);                                           // 5×5 stride 2
            yield return Sq(n, 8, 20, 16, 9, 2, 4);                                           // 9×9 stride 2 (past 7×7)
            yield return new(n, 8, 12, 16, 16, 3, 1, new Conv2dGeometry(1, 1, 1, 0));         // 3×1 kernel
            yield return Sq(n, 16, 32, 32, 3, 2, 1);                                          // stride-2 plane limits: 32² and 33²
            yield return Sq(n, 16, 33, 32, 3, 2, 1);
            yield return Sq(n, 64, 56, 64, 3, 1, 1);
            yield return Sq(n, 16, 14, 16, 3, 1, 1) with { Geo = new Conv2dGeometry(2, 1, 1, 1) };   // stride (2, 1)
            yield return Sq(n, 32, 7, 32, 7, 1, 3);                                           // 7×7 stride 1
        }
        yield return Sq(0, 8, 12, 16, 3, 1, 1);                                               // empty batch
        yield return Sq(2, 8, 1, 16, 3, 2, 1);                                                // 1×1 input plane
    }
}
