using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

// Reference MoE kernels. Per-row math runs in double (exp, Φ) and is stored in the logits' dtype;
// importance and load are summed in that dtype over blocks of GatingRowsPerBlock rows, rows in order,
// then over blocks in order — the same order the CUDA kernels use.
public sealed partial class CpuBackend
{
    private const int RowsPerBlock = MoeKernelConstants.GatingRowsPerBlock;

    /// <inheritdoc />
    public (Storage Packed, Storage TopIndices) MoeGating(StorageView cleanView, StorageView? rawNoiseView,
        StorageView? noiseView, int k, double noiseFloor)
    {
        var (clean, cleanLayout) = cleanView;
        var (rawNoise, rawNoiseLayout) = StorageView.Split(rawNoiseView);
        var (noise, noiseLayout) = StorageView.Split(noiseView);
        return clean.DType switch
        {
            DType.Float32 => MoeGatingT<float>(clean, cleanLayout, rawNoise, rawNoiseLayout, noise, noiseLayout, k, noiseFloor),
            DType.Float64 => MoeGatingT<double>(clean, cleanLayout, rawNoise, rawNoiseLayout, noise, noiseLayout, k, noiseFloor),
            DType.BFloat16 => throw new NotSupportedException("moe_gating: bf16 logits are not supported; autocast keeps the gating in float32 (cast the logits with To(DType.Float32))"),
            _ => throw Unsupported("moe_gating", clean.DType),
        };
    }

    /// <inheritdoc />
    public (Storage GradClean, Storage? GradRawNoise) MoeGatingBackward(StorageView cleanView, StorageView? rawNoiseView,
        StorageView? noiseView, StorageView gradPackedView, int k, double noiseFloor)
    {
        var (clean, cleanLayout) = cleanView;
        var (rawNoise, rawNoiseLayout) = StorageView.Split(rawNoiseView);
        var (noise, noiseLayout) = StorageView.Split(noiseView);
        var (gradPacked, gradPackedLayout) = gradPackedView;
        return clean.DType switch
        {
            DType.Float32 => MoeGatingBackwardT<float>(clean, cleanLayout, rawNoise, rawNoiseLayout, noise, noiseLayout, gradPacked, gradPackedLayout, k, noiseFloor),
            DType.Float64 => MoeGatingBackwardT<double>(clean, cleanLayout, rawNoise, rawNoiseLayout, noise, noiseLayout, gradPacked, gradPackedLayout, k, noiseFloor),
            DType.BFloat16 => throw new NotSupportedException("moe_gating backward: bf16 logits are not supported; autocast keeps the gating in float32"),
            _ => throw Unsupported("moe_gating backward", clean.DType),
        };
    }

    private T[] DenseArr<T>(Storage s, Layout l, out int offset) where T : unmanaged
    {
        var a = Arr<T>(s);
        if (l.IsContiguous) { offset = l.Offset; return a; }
        var d = new T[l.Count];
        Gather(Options, a, l, d);
        offset = 0;
        return d;
    }

    /// <summary>
    /// Keeps the m largest values of <paramref name="v"/> sorted decreasing in val/idx; an equal value never
    /// passes an earlier one, so ties go to the lower expert index.
    /// </summary>
    internal static void TopM(ReadOnlySpan<double> v, int m, Span<int> idx, Span<double> val)
    {
        int count = 0;
        for (int e = 0; e < v.Length; e++)
        {
            double x = v[e];
            int pos;
            if (count < m) pos = count++;
            else if (x > val[m - 1]) pos = m - 1;
            else continue;
            while (pos > 0 && val[pos - 1] < x) { val[pos] = val[pos - 1]; idx[pos] = idx[pos - 1]; pos--; }
            val[pos] = x; idx[pos] = e;
        }
    }

    /// <summary>
    /// Φ(z) for float32 results: erfc(x) ≈ t·exp(−x² + P(t)), t = 1/(1 + |x|/2) (Chebyshev fit, relative error
    /// below 1.2e-7 everywhere) — the formula the CUDA kernel uses, and far cheaper than the series that float64 keeps.
    /// </summary>
    internal static double NormCdfF32(double z)
    {
        double x = -z * 0.70710678118654752;
        double a = Math.Abs(x);
        double t = 1 / (1 + 0.5 * a);
        double p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
                   t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        double r = t * Math.Exp(-a * a + p);
        return 0.5 * (x >= 0 ? r : 2 - r);
    }

    private static double SoftplusD(double x) => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));
    private static double SigmoidD(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));

    // Per-row state of the gating math, recomputed identically by forward and backward.
    private sealed class GatingRow
    {
        public readonly double[] Clean, Sigma, Eps, Noisy, Val, Gate;
        public readonly int[] Idx;
        public readonly bool[] InTop;
        public GatingRow(int e, int m)
        {
            Clean = new double[e]; Sigma = new double[e]; Eps = new double[e]; Noisy = new double[e];
            Gate = new double[e]; InTop = new bool[e]; Val = new double[m]; Idx = new int[m];
        }

        // Loads row b, computes σ, noisy, the top-m and the gates (softmax over the top k).
        public void Compute<T>(int b, int k, int m, bool hasNoise, double floor, T[] c, int oc, T[]? r, int or, T[]? n, int on)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            int e = Clean.Length;
            for (int j = 0; j < e; j++)
            {
                double cj = double.CreateTruncating(c[oc + b * e + j]);
                Clean[j] = cj;
                if (hasNoise)
                {
                    Sigma[j] = SoftplusD(double.CreateTruncating(r![or + b * e + j])) + floor;
                    Eps[j] = double.CreateTruncating(n![on + b * e + j]);
                    Noisy[j] = cj + Eps[j] * Sigma[j];
                }
                else Noisy[j] = cj;
                Gate[j] = 0; InTop[j] = false;
            }
            TopM(Noisy, m, Idx, Val);
            double sum = 0;
            for (int i = 0; i < k; i++) { double w = Math.Exp(Val[i] - Val[0]); Gate[Idx[i]] = w; sum += w; }
            for (int i = 0; i < k; i++) { Gate[Idx[i]] /= sum; InTop[Idx[i]] = true; }
        }

        // Threshold position in the top-m list for expert j: the (k+1)-th largest inside the top k, the k-th outside.
        public int ThresholdPos(int j, int k) => InTop[j] ? k : k - 1;
    }


    private (Storage, Storage) MoeGatingT<T>(Storage clean, Layout lc, Storage? rawNoise, Layout lr, Storage? noise, Layout ln, int k, double floor)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int b = lc.Shape[0], e = lc.Shape[1], m = Math.Min(k + 1, e);
        bool hasNoise = rawNoise is not null;
        bool probLoad = hasNoise && k < e;
        var c = DenseArr<T>(clean, lc, out int oc);
        int or = 0, on = 0;
        var r = hasNoise ? DenseArr<T>(rawNoise!, lr, out or) : null;
        var n = hasNoise ? DenseArr<T>(noise!, ln, out on) : null;
        var packedS = NewStorage(clean.DType, (b + 2) * e, zero: true);
        var topS = NewStorage(DType.Int32, b * k);
        var packed = packedS.Array<T>(); var top = topS.Array<int>();
        int blocks = (b + RowsPerBlock - 1) / RowsPerBlock;
        var partImp = new T[blocks * e]; var partLoad = new T[blocks * e];   // [blocks, E]
        StridedIter.ParallelChunks(Options, blocks, (long)RowsPerBlock * e * 8, (lo, hi) =>
        {
            var row = new GatingRow(e, m);
            for (long blk = lo; blk < hi; blk++)
            {
                int r0 = (int)blk * RowsPerBlock, r1 = Math.Min(b, r0 + RowsPerBlock), pb = (int)blk * e;
                for (int i = r0; i < r1; i++)
                {
                    row.Compute(i, k, m, hasNoise, floor, c, oc, r, or, n, on);
                    for (int j = 0; j < k; j++) top[i * k + j] = row.Idx[j];
                    for (int j = 0; j < e; j++)
                    {
                        T g = T.CreateTruncating(row.Gate[j]);
                        packed[i * e + j] = g;
                        partImp[pb + j] += g;
                        double l;
                        if (probLoad)
                        {
                            double thr = row.Val[row.ThresholdPos(j, k)];
                            double z = (row.Clean[j] - thr) / row.Sigma[j];
                            l = typeof(T) == typeof(float) ? NormCdfF32(z) : SpecialFunctions.NormCdf(z);
                        }
                        else l = row.InTop[j] ? 1 : 0;
                        partLoad[pb + j] += T.CreateTruncating(l);
                    }
                }
            }
        });
        // Second pass: blocks in order.
        for (int blk = 0; blk < blocks; blk++)
            for (int j = 0; j < e; j++)
            {
                packed[b * e + j] += partImp[blk * e + j];
                packed[(b + 1) * e + j] += partLoad[blk * e + j];
            }
        return (packedS, topS);
    }

    private (Storage, Storage?) MoeGatingBackwardT<T>(Storage clean, Layout lc, Storage? rawNoise, Layout lr, Storage? noise, Layout ln,
        Storage gradPacked, Layout lgp, int k, double floor) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int b = lc.Shape[0], e = lc.Shape[1], m = Math.Min(k + 1, e);
        bool hasNoise = rawNoise is not null;
        bool probLoad = hasNoise && k < e;
        var c = DenseArr<T>(clean, lc, out int oc);
        int or = 0, on = 0;
        var r = hasNoise ? DenseArr<T>(rawNoise!, lr, out or) : null;
        var n = hasNoise ? DenseArr<T>(noise!, ln, out on) : null;
        var gp = DenseArr<T>(gradPacked, lgp, out int ogp);   // [B + 2, E]
        var gcS = NewStorage(clean.DType, b * e);
        var grS = hasNoise ? NewStorage(clean.DType, b * e) : null;
        var gc = gcS.Array<T>(); var gr = grS?.Array<T>();
        StridedIter.ParallelChunks(Options, b, (long)e * 16, (lo, hi) =>
        {
            var row = new GatingRow(e, m);
            var dNoisy = new double[e]; var dClean = new double[e]; var dSigma = new double[e];
            for (int i = (int)lo; i < hi; i++)
            {
                row.Compute(i, k, m, hasNoise, floor, c, oc, r, or, n, on);
                Array.Clear(dNoisy); Array.Clear(dClean); Array.Clear(dSigma);
                // Softmax over the top k: dn_t = g_t (dg_t − Σ_s g_s dg_s); dg includes the importance gradient.
                double dot = 0;
                for (int s = 0; s < k; s++)
                {
                    int j = row.Idx[s];
                    dot += row.Gate[j] * (double.CreateTruncating(gp[ogp + i * e + j]) + double.CreateTruncating(gp[ogp + b * e + j]));
                }
                for (int s = 0; s < k; s++)
                {
                    int j = row.Idx[s];
                    double dg = double.CreateTruncating(gp[ogp + i * e + j]) + double.CreateTruncating(gp[ogp + b * e + j]);
                    dNoisy[j] += row.Gate[j] * (dg - dot);
                }
                // Load: p = Φ(z), z = (clean_j − noisy_t)/σ_j with t the threshold expert.
                if (probLoad)
                    for (int j = 0; j < e; j++)
                    {
                        double gl = double.CreateTruncating(gp[ogp + (b + 1) * e + j]);
                        if (gl == 0) continue;
                        int t = row.Idx[row.ThresholdPos(j, k)];
                        double z = (row.Clean[j] - row.Noisy[t]) / row.Sigma[j];
                        double coef = gl * SpecialFunctions.NormPdf(z) / row.Sigma[j];
                        dClean[j] += coef;
                        dSigma[j] -= coef * z;
                        dNoisy[t] -= coef;
                    }
                for (int j = 0; j < e; j++)
                {
                    double dc = dClean[j] + dNoisy[j];
                    gc[i * e + j] = T.CreateTruncating(dc);
                    if (hasNoise)
                    {
                        double ds = dSigma[j] + dNoisy[j] * row.Eps[j];
                        double raw = double.CreateTruncating(r![or + i * e + j]);
                        gr![i * e + j] = T.CreateTruncating(ds * SigmoidD(raw));
                    }
                }
            }
        });
        return (gcS, grS);
    }

    /// <inheritdoc />
    public MoeRoutePlan MoeRoute(Storage topIndices, int batch, int k, int numExperts, int capacity)
    {
        var top = Arr<int>(topIndices);
        var requested = new int[numExperts];
        for (int i = 0; i < batch * k; i++)
        {
            int ex = top[i];
            if ((uint)ex >= (uint)numExperts) throw new ArgumentOutOfRangeException(nameof(topIndices), $"moe_route: expert index {ex} at row {i / k} is outside [0, {numExperts})");
            requested[ex]++;
        }
        var kept = new int[numExperts];
        for (int ex = 0; ex < numExperts; ex++) kept[ex] = capacity < 0 ? requested[ex] : Math.Min(requested[ex], capacity);
        var offS = NewStorage(DType.Int32, numExperts + 1);
        var off = offS.Array<int>();
        off[0] = 0;
        for (int ex = 0; ex < numExperts; ex++) off[ex + 1] = off[ex] + kept[ex];
        int rows = off[numExperts];
        var slotS = NewStorage(DType.Int32, batch * k);
        var srcS = NewStorage(DType.Int32, rows);
        var slot = slotS.Array<int>(); var src = srcS.Array<int>();
        var cursor = new int[numExperts];
        int dropped = 0;
        // Stable placement: (row, choice) pairs in row-major order, so batch order inside each expert.
        for (int i = 0; i < batch * k; i++)
        {
            int ex = top[i];
            if (cursor[ex] >= kept[ex]) { slot[i] = -1; dropped++; continue; }
            int pos = off[ex] + cursor[ex]++;
            slot[i] = pos;
            src[pos] = i / k;
        }
        return new MoeRoutePlan(offS, slotS, srcS, requested, kept, dropped);
    }

    /// <inheritdoc />
    public Storage MoeDispatch(StorageView xView, Storage sourceRow, int rows)
    {
        var (x, xLayout) = xView;
        return x.DType switch
        {
            DType.Float32 => MoeDispatchT<float>(x, xLayout, sourceRow, rows),
            DType.Float64 => MoeDispatchT<double>(x, xLayout, sourceRow, rows),
            DType.BFloat16 => MoeDispatchBf16(xView, sourceRow, rows),
            _ => throw Unsupported("moe_dispatch", x.DType),
        };
    }

    private Storage MoeDispatchT<T>(Storage x, Layout lx, Storage sourceRow, int rows) where T : unmanaged
    {
        int d = lx.Shape[1];
        var xa = DenseArr<T>(x, lx, out int ox);
        var src = Arr<int>(sourceRow);
        var s = NewStorage(x.DType, rows * d);
        var o = s.Array<T>();
        StridedIter.ParallelChunks(Options, rows, d, (lo, hi) =>
        {
            for (long i = lo; i < hi; i++) Array.Copy(xa, ox + src[i] * d, o, i * d, d);
        });
        return s;
    }

    /// <inheritdoc />
    public Storage MoeDispatchBackward(StorageView gradBufferView, Storage slotOf, int batch, int k)
    {
        var (gradBuffer, gradLayout) = gradBufferView;
        return gradBuffer.DType switch
        {
            DType.Float32 => MoeDispatchBackwardT<float>(gradBuffer, gradLayout, slotOf, batch, k),
            DType.Float64 => MoeDispatchBackwardT<double>(gradBuffer, gradLayout, slotOf, batch, k),
            DType.BFloat16 => MoeDispatchBackwardBf16(gradBufferView, slotOf, batch, k),
            _ => throw Unsupported("moe_dispatch backward", gradBuffer.DType),
        };
    }

    private Storage MoeDispatchBackwardT<T>(Storage gradBuffer, Layout lg, Storage slotOf, int batch, int k)
        where T : unmanaged, INumber<T>
    {
        int d = lg.Shape[1];
        var g = DenseArr<T>(gradBuffer, lg, out int og);
        var slot = Arr<int>(slotOf);
        var s = NewStorage(gradBuffer.DType, batch * d, zero: true);
        var o = s.Array<T>();
        StridedIter.ParallelChunks(Options, batch, (long)k * d, (lo, hi) =>
        {
            for (long b = lo; b < hi; b++)
                for (int j = 0; j < k; j++)
                {
                    int p = slot[b * k + j];
                    if (p < 0) continue;
                    var dst = o.AsSpan((int)b * d, d); var srcRow = g.AsSpan(og + p * d, d);
                    for (int h = 0; h < d; h++) dst[h] += srcRow[h];
                }
        });
        return s;
    }

    /// <inheritdoc />
    public Storage MoeCombine(StorageView yView, StorageView gatesView, Storage topIndices, Storage slotOf, int k)
    {
        var (y, yLayout) = yView;
        var (gates, gatesLayout) = gatesView;
        return y.DType switch
        {
            DType.Float32 => MoeCombineT<float>(y, yLayout, gates, gatesLayout, topIndices, slotOf, k),
            DType.Float64 => MoeCombineT<double>(y, yLayout, gates, gatesLayout, topIndices, slotOf, k),
            DType.BFloat16 => MoeCombineBf16(yView, gatesView, topIndices, slotOf, k),
            _ => throw Unsupported("moe_combine", y.DType),
        };
    }

    private Storage MoeCombineT<T>(Storage y, Layout ly, Storage gates, Layout lgt, Storage topIndices, Storage slotOf, int k)
        where T : unmanaged, INumber<T>
    {
        int h = ly.Shape[1], batch = lgt.Shape[0], e = lgt.Shape[1];
        var ya = DenseArr<T>(y, ly, out int oy);
        var ga = DenseArr<T>(gates, lgt, out int og);
        var top = Arr<int>(topIndices); var slot = Arr<int>(slotOf);
        var s = NewStorage(y.DType, batch * h, zero: true);
        var o = s.Array<T>();
        StridedIter.ParallelChunks(Options, batch, (long)k * h, (lo, hi) =>
        {
            for (long b = lo; b < hi; b++)
            {
                var dst = o.AsSpan((int)b * h, h);
                for (int j = 0; j < k; j++)
                {
                    int p = slot[b * k + j];
                    if (p < 0) continue;
                    T w = ga[og + (int)b * e + top[b * k + j]];
                    var src = ya.AsSpan(oy + p * h, h);
                    for (int i = 0; i < h; i++) dst[i] += w * src[i];
                }
            }
        });
        return s;
    }

    /// <inheritdoc />
    public (Storage GradY, Storage GradGates) MoeCombineBackward(StorageView gradOutView, StorageView yView,
        StorageView gatesView, Storage topIndices, Storage slotOf, int k)
    {
        var (gradOut, gradLayout) = gradOutView;
        var (y, yLayout) = yView;
        var (gates, gatesLayout) = gatesView;
        return y.DType switch
        {
            DType.Float32 => MoeCombineBackwardT<float>(gradOut, gradLayout, y, yLayout, gates, gatesLayout, topIndices, slotOf, k),
            DType.Float64 => MoeCombineBackwardT<double>(gradOut, gradLayout, y, yLayout, gates, gatesLayout, topIndices, slotOf, k),
            DType.BFloat16 => MoeCombineBackwardBf16(gradOutView, yView, gatesView, topIndices, slotOf, k),
            _ => throw Unsupported("moe_combine backward", y.DType),
        };
    }

    private (Storage, Storage) MoeCombineBackwardT<T>(Storage gradOut, Layout lgo, Storage y, Layout ly, Storage gates, Layout lgt,
        Storage topIndices, Storage slotOf, int k) where T : unmanaged, INumber<T>
    {
        int h = ly.Shape[1], n = ly.Shape[0], batch = lgt.Shape[0], e = lgt.Shape[1];
        var go = DenseArr<T>(gradOut, lgo, out int ogo);
        var ya = DenseArr<T>(y, ly, out int oy);
        var ga = DenseArr<T>(gates, lgt, out int og);
        var top = Arr<int>(topIndices); var slot = Arr<int>(slotOf);
        var gyS = NewStorage(y.DType, n * h, zero: true);
        var ggS = NewStorage(y.DType, batch * e, zero: true);
        var gy = gyS.Array<T>(); var gg = ggS.Array<T>();
        // Each buffer row belongs to exactly one (row, choice), so rows write disjoint outputs.
        StridedIter.ParallelChunks(Options, batch, (long)k * h * 2, (lo, hi) =>
        {
            for (long b = lo; b < hi; b++)
            {
                var g = go.AsSpan(ogo + (int)b * h, h);
                for (int j = 0; j < k; j++)
                {
                    int p = slot[b * k + j];
                    if (p < 0) continue;
                    int ex = top[b * k + j];
                    T w = ga[og + (int)b * e + ex];
                    var yr = ya.AsSpan(oy + p * h, h);
                    var dy = gy.AsSpan(p * h, h);
                    for (int i = 0; i < h; i++) dy[i] = w * g[i];
                    gg[(int)b * e + ex] = WarpOrderDot<T>(yr, g);
                }
            }
        });
        return (gyS, ggS);
    }

    /// <summary>
    /// Σ a·b in the order the CUDA kernel sums it: lane l (of 32) adds the products at l, l + 32, … in order,
    /// then a butterfly combines lanes at distance 16, 8, 4, 2, 1; the result is lane 0's.
    /// </summary>
    internal static T WarpOrderDot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged, INumber<T>
    {
        Span<T> lanes = stackalloc T[32];
        Span<T> next = stackalloc T[32];
        for (int l = 0; l < 32; l++)
        {
            T acc = T.Zero;
            for (int i = l; i < a.Length; i += 32) acc += a[i] * b[i];
            lanes[l] = acc;
        }
        for (int off = 16; off > 0; off >>= 1)
        {
            for (int l = 0; l < 32; l++) next[l] = lanes[l] + lanes[l ^ off];
            next.CopyTo(lanes);
        }
        return lanes[0];
    }
}
