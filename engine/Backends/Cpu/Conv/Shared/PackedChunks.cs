using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MtlMoe.Engine.Backends.Cpu.Gemm;

namespace MtlMoe.Engine.Backends.Cpu.Conv.Shared;

/// <summary>
/// Chunks laid over all images' output planes end to end, for planes that are not whole 16-lane chunks: a 7×7 plane
/// fills 49 of the 64 lanes of its own four chunks, but 16 images' planes fill 49 chunks exactly. The B source is laid
/// out with the images of a channel side by side ([C, N, plane], one copy of x), so a chunk that ends one image and
/// starts the next is still one masked load; its output rows go to the two images with two masked stores.
/// </summary>
internal static unsafe partial class ImplicitGemmKernel
{
    /// <summary>
    /// Whether the plan's output planes take the chunks laid end to end: more than one image, planes of 16+ positions
    /// whose lane use is below <see cref="CpuBackendOptions.ImplicitPackedBelow"/> (7²: 0.77, 9×11: 0.88; 14² at 0.94
    /// keeps each image's own chunks), and "implicit-packed-chunks" not switched off.
    /// </summary>
    internal static bool UsePacked(in ConvPlan p) =>
        p.N > 1 && p.OutPlane >= L && p.On(CpuPath.ImplicitPackedChunks) && LaneUse(p.OutPlane) < p.Options.ImplicitPackedBelow;

    /// <summary>x [N, C, plane] at xo copied to [C, N, plane] (rented; the caller returns it): the images of a channel side by side.</summary>
    internal static float[] ImagesSideBySide(CpuBackendOptions o, float[] x, int xo, int n, int c, int plane)
    {
        var t = ArrayPool<float>.Shared.Rent(n * c * plane);
        StridedIter.ParallelChunks(o, (long)n * c, plane, (lo, hi) =>
        {
            for (long item = lo; item < hi; item++)
            {
                long image = item / c, channel = item % c;
                Array.Copy(x, xo + item * plane, t, (channel * n + image) * plane, plane);
            }
        });
        return t;
    }

    /// <summary>
    /// The chunks of N planes of <c>plane</c> positions laid end to end: chunk g holds positions 16g.. of the planes side
    /// by side; its first Split[g] lanes are at position Start[g] of image Image[g] and the rest (where ValidB[g] has
    /// lanes) at positions 0.. of the next image. Masks[g·kk + t] are the lanes whose tap-t reads fall inside their own
    /// plane; ValidA/ValidB the output lanes of each part. One empty chunk follows the last, for a tile missing its second.
    /// </summary>
    internal sealed class PackedChunks
    {
        public readonly int Count;
        public readonly int[] Image, Start, Split;
        public readonly ushort[] Masks, ValidA, ValidB;

        /// <param name="n">Images.</param>
        /// <param name="plane">Positions per image (at least 16, so a chunk spans at most two images).</param>
        /// <param name="kk">Taps.</param>
        /// <param name="aligned">The per-image tap masks, [t·perImage + u] for chunk u of an image's own chunks.</param>
        public PackedChunks(int n, int plane, int kk, ushort[] aligned)
        {
            int perImage = (plane + L - 1) / L;
            Count = (int)(((long)n * plane + L - 1) / L);
            Image = new int[Count + 1]; Start = new int[Count + 1]; Split = new int[Count + 1];
            Masks = new ushort[(Count + 1) * kk]; ValidA = new ushort[Count + 1]; ValidB = new ushort[Count + 1];
            bool Reads(int t, int q) => (aligned[t * perImage + q / L] >> (q % L) & 1) != 0;
            for (int g = 0; g < Count; g++)
            {
                long first = (long)g * L;
                int image = (int)(first / plane), q0 = (int)(first % plane), split = Math.Min(L, plane - q0);
                bool next = split < L && image + 1 < n;
                Image[g] = image; Start[g] = q0; Split[g] = split;
                ValidA[g] = (ushort)((1 << split) - 1);
                ValidB[g] = next ? (ushort)(0xFFFF & ~ValidA[g]) : (ushort)0;
                for (int t = 0; t < kk; t++)
                {
                    int bits = 0;
                    for (int l = 0; l < split; l++) if (Reads(t, q0 + l)) bits |= 1 << l;
                    if (next) for (int l = split; l < L; l++) if (Reads(t, l - split)) bits |= 1 << l;
                    Masks[g * kk + t] = (ushort)bits;
                }
            }
        }

        /// <summary>Chunk g's output bases in y (images <paramref name="image"/> apart): part A at a, lane l of part B at b + l.</summary>
        public void Outputs(int g, float* y, nint image, out float* a, out float* b)
        {
            a = y + Image[g] * image + Start[g];
            b = ValidB[g] != 0 ? y + (Image[g] + 1) * image - Split[g] : a;
        }
    }

    // Tiles [t0, t1) over packed chunks for one K block: B at xs + 16g (images side by side, channel stride xChannel),
    // outputs in y [N, rows, plane] from ys (the item's first row), images yImage apart.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackedTiles(PackedChunks packed, int cb, int kk, float* a, float* xs, nint xChannel, int* shifts, float* ys, nint yImage,
        nint plane, int mc, int t0, int t1, bool accumulate)
    {
        int kc = cb * kk;
        fixed (ushort* pm = packed.Masks)
            for (int t = t0; t < t1; t++)
            {
                int g0 = 2 * t, g1 = Math.Min(2 * t + 1, packed.Count); // past the last chunk: the empty one (no lanes)
                packed.Outputs(g0, ys, yImage, out var ya0, out var yb0);
                packed.Outputs(g1, ys, yImage, out var ya1, out var yb1);
                for (int ir = 0; ir < mc; ir += MR)
                {
                    nint row = ir * plane;
                    Tile(cb, kk, a + (nint)ir * kc, xs + (nint)g0 * L, xs + (nint)g1 * L, xChannel, pm + g0 * kk, 1, pm + g1 * kk, 1, shifts,
                        ya0 + row, yb0 + row, ya1 + row, yb1 + row, plane, Math.Min(MR, mc - ir),
                        packed.ValidA[g0], packed.ValidB[g0], packed.ValidA[g1], packed.ValidB[g1], accumulate);
                }
            }
    }
}
