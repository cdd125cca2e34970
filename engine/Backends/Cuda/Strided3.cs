using System.Runtime.InteropServices;
using MtlMoe.Engine.Backends.Cpu;

namespace MtlMoe.Engine.Backends.Cuda;

/// <summary>
/// Layout argument of kernels/pointwise.cu, passed by value (must match its <c>Strided3</c>: int ndim; int pad;
/// i64 shape[8]; i64 st[3][8] — 264 bytes). Dims that are contiguous relative to each other in every operand
/// and in the dense output are merged first, so most launches see one or two dims.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
unsafe struct Strided3
{
    public const int MaxDims = 8;
    public int NDim;
    public int Pad;
    public fixed long Shape[MaxDims];
    public fixed long St[3 * MaxDims];

    /// <summary>Walks <paramref name="shape"/> row-major (the dense output order), reading operand q with strides[q].</summary>
    public static Strided3 Make(string op, int[] shape, params int[][] strides)
    {
        var all = new int[strides.Length + 1][];
        for (int q = 0; q < strides.Length; q++) all[q] = strides[q];
        all[^1] = Shapes.ContiguousStrides(shape);
        var (sh, st) = StridedIter.Coalesce(shape, all);
        if (sh.Length > MaxDims)
            throw new NotSupportedException($"{op} on cuda: layout of shape {Shapes.Format(shape)} has {sh.Length} non-mergeable dims (at most {MaxDims})");
        var s = new Strided3 { NDim = sh.Length };
        for (int d = 0; d < sh.Length; d++)
        {
            s.Shape[d] = sh[d];
            for (int q = 0; q < strides.Length; q++) s.St[q * MaxDims + d] = st[q][d];
        }
        return s;
    }
}
