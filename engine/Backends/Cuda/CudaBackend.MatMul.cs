using MtlMoe.Engine.Backends.Cuda.Native;

namespace MtlMoe.Engine.Backends.Cuda;

// MatMul through cuBLAS (column-major). A row-major C = A·B is computed as the column-major Cᵀ = Bᵀ·Aᵀ by swapping
// the operands: a row-major matrix with row stride ld is, to cuBLAS, its transpose with leading dimension ld (op N),
// and a transposed view (strides (1, ld)) is a column-major matrix (op T) — so the seam's transposed operands are
// read in place. Batch dims that flatten to one stride per operand (0 for broadcast) go to one strided-batched
// SGEMM; anything else (and any operand that is not matrix-like) is made contiguous first. bf16 operands go to
// cublasGemmEx / cublasGemmStridedBatchedEx with bf16 A, B and C and float32 accumulation (CUBLAS_COMPUTE_32F).
public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public unsafe Storage MatMul(StorageView aView, StorageView bView)
    {
        var (a, la) = aView;
        var (b, lb) = bView;
        RequireDType("matmul", a.DType, DType.Float32, DType.BFloat16);
        if (b.DType != a.DType) throw new InvalidOperationException($"matmul: dtypes {a.DType.Name()} and {b.DType.Name()} differ");
        var t = a.DType;
        int r = la.Rank;
        int m = la.Shape[r - 2], k = la.Shape[r - 1], n = lb.Shape[r - 1];
        var batchShape = la.Shape[..(r - 2)];
        int batch = Shapes.Count(batchShape);
        var outShape = batchShape.Append(m).Append(n).ToArray();
        if (batch == 0 || m == 0 || n == 0 || k == 0) return NewZeroed(t, batch * m * n);

        var ownedA = Prepare(a, la, m, k, out var pa, out var opA, out var ldA, out var strideA);
        var ownedB = Prepare(b, lb, k, n, out var pb, out var opB, out var ldB, out var strideB);
        try
        {
            var y = New(t, batch * m * n);
            var h = Context.Cublas;
            Context.MakeCurrent();
            if (t == DType.BFloat16)
            {
                GemmBf16(h, opA, opB, m, n, k, pa, ldA, strideA, pb, ldB, strideB, y.Ptr, batch);
                return y;
            }
            CuBlas.Check(CuBlas.cublasSetMathMode(h, AllowTf32 ? CublasMath.Tf32TensorOp : CublasMath.Default));
            float alpha = 1, beta = 0;
            // Column-major: C'(n×m) = op(B')(n×k) · op(A')(k×m), ldc = n.
            if (batch == 1)
                CuBlas.Check(CuBlas.cublasSgemm_v2(h, opB, opA, n, m, k, &alpha, pb, ldB, pa, ldA, &beta, y.Ptr, n));
            else
                CuBlas.Check(CuBlas.cublasSgemmStridedBatched(h, opB, opA, n, m, k, &alpha, pb, ldB, strideB, pa, ldA, strideA,
                    &beta, y.Ptr, n, (long)m * n, batch));
            return y;
        }
        finally { ownedA?.Release(); ownedB?.Release(); }
    }

    // Column-major C'(n×m) = op(B')·op(A') in bf16 with float32 accumulation, one call (strided batched when batch > 1).
    unsafe void GemmBf16(Native.CublasHandle h, CublasOperation opA, CublasOperation opB, int m, int n, int k,
        Native.CuDevicePtr pa, int ldA, long strideA, Native.CuDevicePtr pb, int ldB, long strideB, Native.CuDevicePtr c, int batch)
    {
        CuBlas.Check(CuBlas.cublasSetMathMode(h, CublasMath.Default));
        float alpha = 1, beta = 0;   // CUBLAS_COMPUTE_32F: the scalars are float
        if (batch == 1)
            CuBlas.Check(CuBlas.cublasGemmEx(h, opB, opA, n, m, k, &alpha, pb, CudaDataType.R16BF, ldB, pa, CudaDataType.R16BF, ldA,
                &beta, c, CudaDataType.R16BF, n, CublasComputeType.Compute32F, CublasGemmAlgo.Default));
        else
            CuBlas.Check(CuBlas.cublasGemmStridedBatchedEx(h, opB, opA, n, m, k, &alpha, pb, CudaDataType.R16BF, ldB, strideB,
                pa, CudaDataType.R16BF, ldA, strideA, &beta, c, CudaDataType.R16BF, n, (long)m * n, batch,
                CublasComputeType.Compute32F, CublasGemmAlgo.Default));
    }

    /// <summary>
    /// How cuBLAS reads one operand [..., rows, cols]: its address, op (N for row-major, T for a transposed view),
    /// leading dimension and batch stride. Returns an owned dense copy when the layout had to be made contiguous.
    /// </summary>
    Storage? Prepare(Storage s, Layout l, int rows, int cols, out Native.CuDevicePtr ptr, out CublasOperation op, out int ld, out long batchStride)
    {
        int r = l.Rank;
        Storage? owned = null;
        if (!MatrixLike(l, rows, cols, out op, out ld) || !FlatBatch(l, out batchStride))
        {
            owned = Contiguous(new(s, l));
            l = Layout.Contiguous(l.Shape);
            MatrixLike(l, rows, cols, out op, out ld);
            FlatBatch(l, out batchStride);
        }
        ptr = P(owned ?? s, l, "matmul");
        return owned;
    }

    static bool MatrixLike(Layout l, int rows, int cols, out CublasOperation op, out int ld)
    {
        int r = l.Rank, sr = l.Strides[r - 2], sc = l.Strides[r - 1];
        // Row-major (op N for the swapped product): unit column stride, row stride ≥ cols (free when one row).
        if ((sc == 1 || cols == 1) && (rows == 1 || sr >= Math.Max(1, cols)))
        {
            op = CublasOperation.N; ld = rows == 1 ? Math.Max(1, cols) : sr; return true;
        }
        // A transposed view: unit row stride, column stride ≥ rows.
        if ((sr == 1 || rows == 1) && (cols == 1 || sc >= Math.Max(1, rows)))
        {
            op = CublasOperation.T; ld = cols == 1 ? Math.Max(1, rows) : sc; return true;
        }
        op = CublasOperation.N; ld = 0; return false;
    }

    /// <summary>True when the batch dims walk with one stride (size-1 dims ignored; 0 = broadcast).</summary>
    static bool FlatBatch(Layout l, out long stride)
    {
        stride = 0;
        int lastDim = -1;
        for (int i = l.Rank - 3; i >= 0; i--)
        {
            if (l.Shape[i] == 1) continue;
            if (lastDim < 0) { stride = l.Strides[i]; lastDim = i; continue; }
            // Dim i must continue dim lastDim: stride_i = stride_last · size_last (both 0 for broadcast).
            if ((long)l.Strides[i] != (long)l.Strides[lastDim] * l.Shape[lastDim]) return false;
            lastDim = i;
        }
        return true;
    }
}
