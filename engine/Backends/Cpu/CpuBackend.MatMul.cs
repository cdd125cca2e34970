using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public Storage MatMul(StorageView aView, StorageView bView)
    {
        var (a, la) = aView;
        var (b, lb) = bView;
        return a.DType switch
        {
            DType.Float32 => MatMulT<float>(a, la, b, lb),
            DType.Float64 => MatMulT<double>(a, la, b, lb),
            DType.BFloat16 => MatMulBf16(aView, bView),
            _ => throw Unsupported("matmul", a.DType),
        };
    }

    private Storage MatMulT<T>(Storage sa, Layout la, Storage sb, Layout lb) where T : unmanaged, INumber<T>
    {
        int r = la.Rank;
        int m = la.Shape[r - 2], k = la.Shape[r - 1], n = lb.Shape[r - 1];
        var batchShape = la.Shape[..(r - 2)];
        int batch = Shapes.Count(batchShape);
        var outShape = new int[r];
        batchShape.CopyTo(outShape, 0); outShape[r - 2] = m; outShape[r - 1] = n;
        var outS = NewStorage(sa.DType, batch * m * n, zero: k == 0);
        var o = outS.Array<T>();
        var a = Arr<T>(sa); var bArr = Arr<T>(sb);
        var (aMat, transA, lda) = GemmOperand(la, m, k);
        var (bMat, transB, ldb) = GemmOperand(lb, k, n);
        // Operands whose matrix part is neither row- nor column-major are made dense first.
        T[] aData = a; Layout aL = la;
        if (!aMat) { aData = new T[la.Count]; Gather(Options, a, la, aData); aL = Layout.Contiguous(la.Shape); (_, transA, lda) = (true, false, k); }
        T[] bData = bArr; Layout bL = lb;
        if (!bMat) { bData = new T[lb.Count]; Gather(Options, bArr, lb, bData); bL = Layout.Contiguous(lb.Shape); (_, transB, ldb) = (true, false, n); }
        if (k == 0) return outS;
        var counter = new int[batchShape.Length];
        for (int bi = 0; bi < batch; bi++)
        {
            int offA = aL.Offset, offB = bL.Offset, rem = bi;
            for (int d = batchShape.Length - 1; d >= 0; d--)
            {
                int idx = rem % batchShape[d]; rem /= batchShape[d];
                offA += idx * aL.Strides[d]; offB += idx * bL.Strides[d];
            }
            int aLen = Extent(transA, m, k, lda), bLen = Extent(transB, k, n, ldb);
            CpuGemm.Gemm<T>(Options, transA, transB, m, n, k, T.One,
                aData.AsSpan(offA, aLen), lda, bData.AsSpan(offB, bLen), ldb, T.Zero, o.AsSpan(bi * m * n, m * n), n);
        }
        return outS;
    }

    // Span length a GEMM operand needs: rows × ld with the last row only as long as it must be.
    private static int Extent(bool trans, int rows, int cols, int ld) => trans ? (cols - 1) * ld + rows : (rows - 1) * ld + cols;

    // Whether the last two dims of a layout are a row-major (ld = row stride) or column-major matrix.
    private (bool ok, bool trans, int ld) GemmOperand(Layout l, int rows, int cols)
    {
        int r = l.Rank;
        int sr = l.Strides[r - 2], sc = l.Strides[r - 1];
        if ((sc == 1 || cols == 1) && (rows == 1 || sr >= cols)) return (true, false, rows == 1 ? cols : sr);
        if ((sr == 1 || rows == 1) && (cols == 1 || sc >= rows)) return (true, true, cols == 1 ? rows : sc);
        return (false, false, 0);
    }
}
