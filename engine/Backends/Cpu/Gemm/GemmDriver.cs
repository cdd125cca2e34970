using System.Numerics;
using System.Runtime.CompilerServices;

namespace MtlMoe.Engine.Backends.Cpu;

/// <summary>
/// Goto/BLIS-style blocked GEMM around one micro-kernel <typeparamref name="TK"/>:
/// jc (NC columns of B) → pc (KC deep; B block packed) → ic (MC rows of A; A block packed) →
/// jr (NR-wide B sliver, stays in L1) → ir (MR-high A sliver) → micro-kernel.
/// Threads take disjoint, statically computed ranges of whole tiles of C (never of K), so the
/// summation order of every element is fixed and results do not depend on timing (nor on the
/// thread count: each element's sum is the same sequence of kernel steps).
/// </summary>
internal static unsafe class GemmDriver<T, TK> where T : unmanaged, INumber<T> where TK : IGemmKernel<T>
{
    // Packing buffers reused per thread (pinned so that fixed is free and the GC never moves them).
    [ThreadStatic] private static T[]? _aBuf;
    [ThreadStatic] private static T[]? _bBuf;

    // Below about this many flops one thread is faster than waking another.
    private const long ParallelFlops = 1L << 22;

    public static void Run(bool transA, bool transB, int m, int n, int k, T alpha,
        T* a, int lda, T* b, int ldb, T beta, T* c, int ldc, int threads)
    {
        // A narrow C (n well below NR, e.g. 1000×8) wastes most of each NR-wide tile; computing
        // Cᵀ = op(B)ᵀ·op(A)ᵀ instead puts the narrow side on the MR rows of the tile.
        if (TileUse(n, TK.MR) * TileUse(m, TK.NR) > 1.3 * TileUse(m, TK.MR) * TileUse(n, TK.NR))
            Split(!transB, !transA, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc, threads, cTrans: true);
        else
            Split(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, cTrans: false);
    }

    // Fraction of tile lanes that hold real data when x is cut into tiles of t.
    private static double TileUse(int x, int t) => x / (double)((x + t - 1) / t * t);

    /// <summary>
    /// Splits C over threads. When <paramref name="cTrans"/>, the m×n product being computed is Cᵀ:
    /// its element (i, j) lives at c[j·ldc + i].
    /// </summary>
    private static void Split(bool transA, bool transB, int m, int n, int k, T alpha,
        T* a, int lda, T* b, int ldb, T beta, T* c, int ldc, int threads, bool cTrans)
    {
        int mr = TK.MR, nr = TK.NR;
        int tilesM = (m + mr - 1) / mr, tilesN = (n + nr - 1) / nr;
        bool splitN = tilesN >= tilesM;
        int tiles = splitN ? tilesN : tilesM;
        int t = 2L * m * n * k < ParallelFlops ? 1 : Math.Min(threads, tiles);
        if (t <= 1)
        {
            Serial(transA, transB, 0, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc, cTrans);
            return;
        }
        // Chunk ci gets tiles [tiles·ci/t, tiles·(ci+1)/t): depends only on the shape and t.
        Parallel.For(0, t, new ParallelOptions { MaxDegreeOfParallelism = t }, ci =>
        {
            int lo = (int)((long)tiles * ci / t), hi = (int)((long)tiles * (ci + 1) / t);
            if (hi <= lo) return;
            if (splitN) Serial(transA, transB, 0, m, lo * nr, Math.Min(n, hi * nr), k, alpha, a, lda, b, ldb, beta, c, ldc, cTrans);
            else Serial(transA, transB, lo * mr, Math.Min(m, hi * mr), 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc, cTrans);
        });
    }

    private static T[] Buffer(ref T[]? slot, int length)
    {
        if (slot is null || slot.Length < length) slot = GC.AllocateUninitializedArray<T>(length, pinned: true);
        return slot;
    }

    /// <summary>C[m0:m1, n0:n1] on the calling thread.</summary>
    // Fully optimised from the first call: a one-off large GEMM would otherwise spend its time in tier-0 loops.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Serial(bool transA, bool transB, int m0, int m1, int n0, int n1, int k, T alpha,
        T* a, int lda, T* b, int ldb, T beta, T* c, int ldc, bool cTrans)
    {
        int MR = TK.MR, NR = TK.NR, KC = TK.KC, MC = TK.MC, NC = TK.NC;
        int kcMax = Math.Min(KC, k);
        int ncMax = Math.Min(NC, (n1 - n0 + NR - 1) / NR * NR);
        int mcMax = Math.Min(MC, (m1 - m0 + MR - 1) / MR * MR);
        var aBuf = Buffer(ref _aBuf, mcMax * kcMax);
        var bBuf = Buffer(ref _bBuf, ncMax * kcMax);
        T* tile = stackalloc T[MR * NR];
        // With at most two A slivers per B sliver, packing B costs more than the contiguous reads it buys.
        bool inPlaceB = !transB && m1 - m0 <= 2 * MR;
        fixed (T* ap = aBuf, bp = bBuf)
        {
            for (int jc = n0; jc < n1; jc += NC)
            {
                int nc = Math.Min(NC, n1 - jc);
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    // Later K blocks accumulate onto what the first one wrote.
                    bool first = pc == 0;
                    T bEff = first ? beta : T.One;
                    bool betaZero = first && beta == T.Zero;
                    if (!inPlaceB) PackB(transB, b, ldb, pc, kc, jc, nc, NR, bp);
                    for (int ic = m0; ic < m1; ic += MC)
                    {
                        int mc = Math.Min(MC, m1 - ic);
                        PackA(transA, a, lda, ic, mc, pc, kc, MR, ap);
                        for (int jr = 0; jr < nc; jr += NR)
                        {
                            int nrr = Math.Min(NR, nc - jr);
                            T* bs = bp + (nint)jr * kc;
                            nint bStride = NR;
                            if (inPlaceB)
                            {
                                // Full slivers are read straight from B (row stride ldb); only the edge one is packed.
                                if (nrr == NR) { bs = b + (nint)pc * ldb + jc + jr; bStride = ldb; }
                                else PackB(false, b, ldb, pc, kc, jc + jr, nrr, NR, bs);
                            }
                            for (int ir = 0; ir < mc; ir += MR)
                            {
                                int mrr = Math.Min(MR, mc - ir);
                                T* asl = ap + (nint)ir * kc;
                                if (cTrans)
                                {
                                    // Tile of Cᵀ: row r, column j go to C[jc+jr+j, ic+ir+r].
                                    TK.Run(kc, asl, bs, bStride, tile, NR, T.One, T.Zero, true);
                                    for (int j = 0; j < nrr; j++)
                                    {
                                        T* ccol = c + (nint)(jc + jr + j) * ldc + ic + ir; T* tcol = tile + j;
                                        if (betaZero) for (int r = 0; r < mrr; r++) ccol[r] = alpha * tcol[r * NR];
                                        else for (int r = 0; r < mrr; r++) ccol[r] = alpha * tcol[r * NR] + bEff * ccol[r];
                                    }
                                    continue;
                                }
                                T* cc = c + (nint)(ic + ir) * ldc + jc + jr;
                                if (mrr == MR && nrr == NR) TK.Run(kc, asl, bs, bStride, cc, ldc, alpha, bEff, betaZero);
                                else
                                {
                                    // Edge tile: full kernel into a scratch tile, then copy the valid part.
                                    TK.Run(kc, asl, bs, bStride, tile, NR, T.One, T.Zero, true);
                                    for (int r = 0; r < mrr; r++)
                                    {
                                        T* crow = cc + (nint)r * ldc; T* trow = tile + r * NR;
                                        if (betaZero) for (int j = 0; j < nrr; j++) crow[j] = alpha * trow[j];
                                        else for (int j = 0; j < nrr; j++) crow[j] = alpha * trow[j] + bEff * crow[j];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs op(A)[ic:ic+mc, pc:pc+kc] as MR-high slivers, each kc×MR (MR values per p), zero-padded rows.
    /// Reads a transposed A (stored k×m) directly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(bool transA, T* a, int lda, int ic, int mc, int pc, int kc, int MR, T* dst)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            T* d = dst + (nint)ir * kc;
            if (!transA && typeof(T) == typeof(float) && mr == MR && MR % 8 == 0 && GemmTranspose.Supported)
            {
                // Rows of A are contiguous: 8×8 register transposes into the interleaved sliver.
                GemmTranspose.Rows((float*)(a + (nint)(ic + ir) * lda + pc), lda, MR, kc, (float*)d, MR);
            }
            else if (!transA)
            {
                // Row r of the sliver is contiguous in A; scatter it with stride MR.
                for (int r = 0; r < mr; r++)
                {
                    T* src = a + (nint)(ic + ir + r) * lda + pc;
                    T* dd = d + r;
                    for (int p = 0; p < kc; p++) dd[(nint)p * MR] = src[p];
                }
            }
            else
            {
                // Aᵀ stored k×m: the MR values for one p are contiguous.
                for (int p = 0; p < kc; p++)
                {
                    T* src = a + (nint)(pc + p) * lda + ic + ir;
                    T* dd = d + (nint)p * MR;
                    for (int r = 0; r < mr; r++) dd[r] = src[r];
                }
            }
            if (mr < MR)
                for (int p = 0; p < kc; p++)
                    for (int r = mr; r < MR; r++) d[(nint)p * MR + r] = T.Zero;
        }
    }

    /// <summary>
    /// Packs op(B)[pc:pc+kc, jc:jc+nc] as NR-wide slivers, each kc×NR (NR values per p), zero-padded columns.
    /// Reads a transposed B (stored n×k) directly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(bool transB, T* b, int ldb, int pc, int kc, int jc, int nc, int NR, T* dst)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            T* d = dst + (nint)jr * kc;
            if (!transB)
            {
                for (int p = 0; p < kc; p++)
                    new ReadOnlySpan<T>(b + (nint)(pc + p) * ldb + jc + jr, nr).CopyTo(new Span<T>(d + (nint)p * NR, nr));
            }
            else if (typeof(T) == typeof(float) && nr == NR && NR % 8 == 0 && GemmTranspose.Supported)
            {
                // Bᵀ stored n×k: NR rows of it, 8×8 register transposes into the sliver.
                GemmTranspose.Rows((float*)(b + (nint)(jc + jr) * ldb + pc), ldb, NR, kc, (float*)d, NR);
            }
            else
            {
                // Bᵀ stored n×k: column j of op(B) is contiguous; scatter it with stride NR.
                for (int j = 0; j < nr; j++)
                {
                    T* src = b + (nint)(jc + jr + j) * ldb + pc;
                    T* dd = d + j;
                    for (int p = 0; p < kc; p++) dd[(nint)p * NR] = src[p];
                }
            }
            if (nr < NR)
                for (int p = 0; p < kc; p++)
                    for (int j = nr; j < NR; j++) d[(nint)p * NR + j] = T.Zero;
        }
    }
}
