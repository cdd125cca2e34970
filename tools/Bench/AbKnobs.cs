using System.Diagnostics;
using MtlMoe.Engine.Backends.Cpu;
using MtlMoe.Engine.Backends.Cpu.Conv.Shared;

namespace MtlMoe.Bench;

/// <summary>
/// In-process A/B of the CPU backend's fast paths (<c>--ab KNOB</c>): runs alternate between the knob off and on,
/// so both sides see the same machine load at a fine grain; the medians of each side are reported. Knobs:
/// unfold (AVX-512 stride-2 im2col), same (AVX-512 stride-1 same-width im2col), packb (the conv unfold writes the
/// GEMM's packed-B layout), flip (AVX-512 kernel flip for backward-data), fold (AVX-512 stride-2 col2im),
/// blocks (packed-B GEMM items without a barrier per KC step), team (spinning worker team instead of Parallel.For;
/// the A/B understates it, as the helper falls asleep during each "off" run), tiled (the tiled conv schedule for
/// planes of 192+ outputs, against batching images), implicit (implicit-GEMM convs), implicit2 (its 3×3 stride-2 phase-plane
/// forward alone), implicit2bd (the 3×3 stride-2 backward-data as four phase GEMMs), pointwise2 (the
/// 1×1 stride-2 convs as GEMMs over all images' positions: backward-data always, forward and backward-weights at 14² → 7²), packed (implicit-GEMM chunks laid end to end over
/// the images for planes such as 7²), strided1x1 (strided 1×1
/// backward-data per image at every plane size), weightgrad (blocked backward-weights of 3×3 convs and the 7×7 stem, no
/// transposed unfold), maxpool (AVX-512 max-pool), tail (fused batch-norm + add +
/// ReLU block tail), bnstats (one-sweep batch-norm statistics), all (every fast path, not the schedule choice "tiled").
/// </summary>
public static class AbKnobs
{
    private static readonly int TiledMinPlane = CpuBackend.ConvTiledMinPlane;

    /// <summary>Knob names accepted by <c>--ab</c>.</summary>
    public static readonly string[] Names = ["unfold", "maxpool", "tail", "bnstats", "fold", "packb", "same", "flip", "blocks", "tiled", "team", "implicit", "implicit2", "implicit2bd", "pointwise2", "packed", "strided1x1", "weightgrad", "all"];

    /// <summary>Turns <paramref name="knob"/> on or off.</summary>
    public static void Set(string knob, bool on)
    {
        switch (knob)
        {
            case "unfold": Im2ColVec.Enabled = on; break;
            case "maxpool": MaxPoolVec.Enabled = on; break;
            case "tail": MtlMoe.Model.Backbone.BasicBlock.FusedTail = on; break;
            case "bnstats": CpuBackend.BnStatsOnePass = on; break;
            case "fold": Col2ImVec.Enabled = on; break;
            case "packb": Im2ColPacked.Enabled = on; break;
            case "same": Im2ColSameVec.Enabled = on; break;
            case "flip": CpuBackend.FlipVec = on; break;
            case "blocks": GemmSchedule.PackedBlocksAlone = on; break;
            case "team": WorkerTeam.Enabled = on; break;
            case "implicit": ConvImplicit.Enabled = on; break;
            case "implicit2": ConvImplicit.Stride2Enabled = on; break;
            case "implicit2bd": ConvImplicit.Stride2BackwardDataEnabled = on; break;
            case "pointwise2": ConvImplicit.PointwiseStride2Enabled = on; break;
            case "packed": ConvImplicit.PackedBelow = on ? 0.9 : 0; break;
            case "strided1x1": CpuBackend.ConvTiledStrided1x1BackwardData = on; break;
            case "weightgrad": ConvWeightGrad.Enabled = on; break;
            case "tiled": CpuBackend.ConvTiledMinPlane = on ? TiledMinPlane : int.MaxValue; break;
            case "all": CpuBackend.ConvTiledStrided1x1BackwardData = on; ConvImplicit.Enabled = on; ConvWeightGrad.Enabled = on; WorkerTeam.Enabled = on; GemmSchedule.PackedBlocksAlone = on; Im2ColSameVec.Enabled = on; CpuBackend.FlipVec = on; Col2ImVec.Enabled = on; Im2ColPacked.Enabled = on; CpuBackend.BnStatsOnePass = on; Im2ColVec.Enabled = on; MaxPoolVec.Enabled = on; MtlMoe.Model.Backbone.BasicBlock.FusedTail = on; break;
            default: throw new ArgumentException($"--ab: unknown knob '{knob}' (one of {string.Join(", ", Names)})");
        }
    }

    /// <summary>Median ms with the knob off and on, over <paramref name="runs"/> alternating pairs (after one warm-up each); leaves it on.</summary>
    public static (double Off, double On) MedianMs(string knob, Action body, int runs)
    {
        runs = Math.Max(runs, 5);
        Set(knob, false); body();
        Set(knob, true); body();
        var off = new double[runs]; var on = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            // Alternate which side goes first, so neither always follows the other.
            for (int side = 0; side < 2; side++)
            {
                bool isOn = (side == 0) == (i % 2 == 0);
                Set(knob, isOn);
                var sw = Stopwatch.StartNew();
                body();
                (isOn ? on : off)[i] = sw.Elapsed.TotalMilliseconds;
            }
        }
        Set(knob, true);
        Array.Sort(off); Array.Sort(on);
        return (Median(off), Median(on));
    }

    private static double Median(double[] s) => s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
}
