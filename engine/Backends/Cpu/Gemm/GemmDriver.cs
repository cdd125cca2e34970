using System.Numerics;
using System.Runtime.CompilerServices;

namespace MtlMoe.Engine.Backends.Cpu.Gemm;

/// <summary>
/// Goto/BLIS-style blocked GEMM around one micro-kernel <typeparamref name="TK"/>:
/// jc (NC columns of B) → pc (KC deep; B block packed once, shared by all threads) →
/// work items = MC rows of A (packed per item) × a range of NR-wide B slivers → ir (MR-high A sliver) → kernel.
/// K is never split: every element of C is summed by one item in the same kernel steps whichever thread
/// runs it, so items are scheduled dynamically (good under load) and results are still bit-identical
/// for any thread count and any timing.
/// </summary>
internal static unsafe class GemmDriver<T, TK> where T : unmanaged, INumber<T> where TK : IGemmKernel<T>
{
    // Packing buffers reused per thread (pinned so that fixed is free and the GC never moves them).
    [ThreadStatic] private static T[]? _aBuf;
    [ThreadStatic] private static T[]? _bBuf;

    // Below about this many flops one thread is faster than waking another.
    private const long ParallelFlops = 1L << 22;

    public static void Run(bool transA, bool transB, int m, int n, int k, T alpha,
        T* a, int lda, T* b, int ldb, T beta, T* c, int ldc, int threads, CpuBackendOptions o)
    {
        // A narrow C (n well below NR, e.g. 1000×8) wastes most of each NR-wide tile; computing
        // Cᵀ = op(B)ᵀ·op(A)ᵀ instead puts the narrow side on the MR rows of the tile.
        if (TileUse(n, TK.MR) * TileUse(m, TK.NR) > 1.3 * TileUse(m, TK.MR) * TileUse(n, TK.NR))
            Split(!transB, !transA, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc, threads, o, cTrans: true, default);
        else
            Split(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, o, cTrans: false, default);
    }

    /// <summary>
    /// C = α·op(A)·B + β·C with B already in the packed layout (<see cref="PackedB"/>: KC-deep blocks of NR-wide
    /// slivers over the padded width), as a conv's unfold writes it: no B packing pass.
    /// </summary>
    public static void RunPacked(bool transA, int m, int n, int k, T alpha, T* a, int lda, T* bPacked, T beta, T* c, int ldc, int threads,
        CpuBackendOptions o)
        => Split(transA, false, m, n, k, alpha, a, lda, null, 0, beta, c, ldc, threads, o, cTrans: false,
            new PackedB(bPacked, (n + TK.NR - 1) / TK.NR * TK.NR, 0));

    /// <summary>
    /// A B operand packed ahead of time: block (pc, columns from j) starts at Base + pc·PaddedCols + (Col0 + j)·kc,
    /// where kc is that block's depth; Col0 shifts the view for a column range. Base null: B is packed by the driver.
    /// </summary>
    internal readonly struct PackedB(T* basePtr, int paddedCols, int col0)
    {
        public readonly T* Base = basePtr;
        public readonly int PaddedCols = paddedCols, Col0 = col0;
        public bool Given => Base != null;
        public T* Block(int pc, int jc, int kc) => Base + (nint)pc * PaddedCols + (nint)(Col0 + jc) * kc;
        public PackedB Shift(int cols) => new(Base, PaddedCols, Col0 + cols);
    }

    /// <summary>
    /// Rows of A per packed block: the kernel's MC, or 4·MC when A has at least 8·MC rows. The bigger block (512×256 floats
    /// = 512 KiB of L2 for AVX-512) reuses each L1-resident B sliver over 64 A slivers instead of 16: GEMM 1024³ went from
    /// 314–318 to 353–361 GFLOPS and 2048³ from 311–316 to 348–356 (four runs each). Smaller A keeps MC, so the
    /// conv GEMMs (at most 512 output channels) keep their parallel schedules.
    /// </summary>
    internal static int BlockRows(int m) => m >= 8 * TK.MC ? 4 * TK.MC : TK.MC;

    // Fraction of tile lanes that hold real data when x is cut into tiles of t.
    private static double TileUse(int x, int t) => x / (double)((x + t - 1) / t * t);

    private static T[] Buffer(ref T[]? slot, int length)
    {
        if (slot is null || slot.Length < length) slot = GC.AllocateUninitializedArray<T>(length, pinned: true);
        return slot;
    }

    /// <summary>
    /// The blocked product. When <paramref name="cTrans"/>, the m×n product being computed is Cᵀ:
    /// its element (i, j) lives at c[j·ldc + i].
    /// </summary>
    // Fully optimised from the first call: a one-off large GEMM would otherwise spend its time in tier-0 loops.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Split(bool transA, bool transB, int m, int n, int k, T alpha,
        T* a, int lda, T* b, int ldb, T beta, T* c, int ldc, int threads, CpuBackendOptions o, bool cTrans, PackedB pre)
    {
        int MR = TK.MR, NR = TK.NR, KC = TK.KC, MC = BlockRows(m), NC = TK.NC;
        bool parallel = threads > 1 && 2L * m * n * k >= ParallelFlops;
        int kcMax = Math.Min(KC, k);
        int ncMax = Math.Min(NC, (n + NR - 1) / NR * NR);
        // With at most two A slivers per B sliver, packing B costs more than the contiguous reads it buys.
        bool inPlaceB = !pre.Given && !transB && m <= 2 * MR;
        int mBlocks = (m + MC - 1) / MC;
        if (parallel && mBlocks == 1)
        {
            // Few rows (e.g. 64 output channels, big K): a shared B block would need two barriers per KC step.
            // Instead each item owns a range of columns for the whole K loop and packs its own B; only the
            // small A is packed more than once. Ranges start on sliver boundaries, so tiles are unchanged.
            int sl = (n + NR - 1) / NR, parts = Math.Min(sl, 4 * threads);
            WorkerTeam.For(o, parts, threads, part =>
            {
                int c0 = (int)((long)sl * part / parts) * NR, c1 = Math.Min(n, (int)((long)sl * (part + 1) / parts) * NR);
                T* bOff = pre.Given ? null : transB ? b + (nint)c0 * ldb : b + c0;
                T* cOff = cTrans ? c + (nint)c0 * ldc : c + c0;
                Split(transA, transB, m, c1 - c0, k, alpha, a, lda, bOff, ldb, beta, cOff, ldc, 1, o, cTrans, pre.Given ? pre.Shift(c0) : pre);
            });
            return;
        }
        if (parallel && pre.Given && o.On(CpuPath.GemmPackedBlocksAlone))
        {
            // B is already packed and shared read-only, so nothing needs a barrier per KC step: each item owns MC rows ×
            // a range of slivers for the whole K loop (at least two items per thread, for balance).
            int sl = (n + NR - 1) / NR, parts = Math.Clamp((2 * threads + mBlocks - 1) / mBlocks, 1, sl);
            WorkerTeam.For(o, mBlocks * parts, threads, item =>
            {
                int ib = item / parts, part = item % parts, r0 = ib * MC, r1 = Math.Min(m, r0 + MC);
                int c0 = (int)((long)sl * part / parts) * NR, c1 = Math.Min(n, (int)((long)sl * (part + 1) / parts) * NR);
                T* aOff = transA ? a + r0 : a + (nint)r0 * lda;
                Split(transA, false, r1 - r0, c1 - c0, k, alpha, aOff, lda, null, 0, beta, c + (nint)r0 * ldc + c0, ldc, 1, o, false, pre.Shift(c0));
            });
            return;
        }
        // The B block is packed once per (jc, pc) into the calling thread's buffer and read by all workers.
        var bBuf = pre.Given ? null : Buffer(ref _bBuf, ncMax * kcMax); // a caller-packed B needs no buffer
        fixed (T* bp = bBuf)
        {
            T* bpp = bp;
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                int slivers = (nc + NR - 1) / NR;
                // Work items: one MC block of rows × one range of B slivers; enough of them to balance the threads.
                int nBlocks = parallel ? Math.Clamp((4 * threads + mBlocks - 1) / mBlocks, 1, slivers) : 1;
                int items = mBlocks * nBlocks;
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    // Later K blocks accumulate onto what the first one wrote.
                    bool first = pc == 0;
                    T bEff = first ? beta : T.One;
                    bool betaZero = first && beta == T.Zero;
                    if (pre.Given) bpp = pre.Block(pc, jc, kc);
                    else if (!inPlaceB)
                    {
                        if (parallel && slivers > 1)
                            WorkerTeam.For(o, Math.Min(slivers, 4 * threads), threads, part =>
                            {
                                int parts = Math.Min(slivers, 4 * threads);
                                int s0 = (int)((long)slivers * part / parts), s1 = (int)((long)slivers * (part + 1) / parts);
                                int c0 = s0 * NR, c1 = Math.Min(nc, s1 * NR);
                                PackB(transB, b, ldb, pc, kc, jc + c0, c1 - c0, NR, bpp + (nint)c0 * kc);
                            });
                        else PackB(transB, b, ldb, pc, kc, jc, nc, NR, bpp);
                    }
                    // Every element of C is computed by exactly one item with the same packed data and the
                    // same kernel steps whichever thread runs it, so dynamic scheduling keeps results exact.
                    if (parallel)
                        WorkerTeam.For(o, items, threads, item => Block(item, MC, nBlocks, slivers, transA, transB, m, nc, jc, pc, kc,
                            alpha, a, lda, b, ldb, bEff, betaZero, c, ldc, bpp, inPlaceB, cTrans));
                    else
                        for (int item = 0; item < items; item++)
                            Block(item, MC, nBlocks, slivers, transA, transB, m, nc, jc, pc, kc,
                                alpha, a, lda, b, ldb, bEff, betaZero, c, ldc, bpp, inPlaceB, cTrans);
                }
            }
        }
    }

    /// <summary>One work item: packs its MC×kc block of A, then runs the tiles of its sliver range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block(int item, int MC, int nBlocks, int slivers, bool transA, bool transB, int m, int nc, int jc, int pc, int kc,
        T alpha, T* a, int lda, T* b, int ldb, T bEff, bool betaZero, T* c, int ldc, T* bp, bool inPlaceB, bool cTrans)
    {
        int MR = TK.MR, NR = TK.NR;
        int ib = item / nBlocks, jb = item % nBlocks;
        int ic = ib * MC, mc = Math.Min(MC, m - ic);
        int jr0 = (int)((long)slivers * jb / nBlocks) * NR, jr1 = Math.Min(nc, (int)((long)slivers * (jb + 1) / nBlocks) * NR);
        var aBuf = Buffer(ref _aBuf, MC * TK.KC);
        T* tile = stackalloc T[MR * NR];
        fixed (T* ap = aBuf)
        {
            PackA(transA, a, lda, ic, mc, pc, kc, MR, ap);
            for (int jr = jr0; jr < jr1; jr += NR)
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

    /// <summary>
    /// Packs op(A)[ic:ic+mc, pc:pc+kc] as MR-high slivers, each kc×MR (MR values per p), zero-padded rows.
    /// Reads a transposed A (stored k×m) directly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackA(bool transA, T* a, int lda, int ic, int mc, int pc, int kc, int MR, T* dst)
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
                    if (mr == MR) Unsafe.CopyBlockUnaligned(dd, src, (uint)(MR * sizeof(T)));
                    else for (int r = 0; r < mr; r++) dd[r] = src[r];
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
                    Unsafe.CopyBlockUnaligned(d + (nint)p * NR, b + (nint)(pc + p) * ldb + jc + jr, (uint)(nr * sizeof(T)));
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
