namespace MtlMoe.Tests.Moe;

/// <summary>
/// A float32 re-implementation, lane by lane, of kernels/moe_gating.cu's moe_gating_fused(_k2)_f32 and its backward:
/// the ballot-based top-m selection, the per-warp rows, the four-level fixed summation order with the elected
/// group/final blocks, the CV² auxiliary loss and the backward with the aux gradient folded in and butterfly
/// threshold sums. It checks the algorithm (partition, order, tie rule, formulas) against the CPU reference before a
/// GPU runs the PTX; transcendental functions are MathF's, not the GPU's approximate units.
/// </summary>
internal sealed class FusedGatingEmulation
{
    // Must match kernels/moe_gating.cu.
    public const int Warps = 8, RowsPerWarp = 8, Rows = Warps * RowsPerWarp, Group = 32;

    private readonly float[] _clean;
    private readonly float[]? _raw, _noise;
    private readonly int _b, _e, _k;
    private readonly float _floor;

    public FusedGatingEmulation(float[] clean, float[]? raw, float[]? noise, int b, int e, int k, float floor = 1e-2f)
    {
        if (e > 64 || k > 8 || k > e) throw new ArgumentException("the fused kernels take E ≤ 64 and k ≤ min(8, E)");
        _clean = clean; _raw = raw; _noise = noise; _b = b; _e = e; _k = k; _floor = floor;
    }

    public int Blocks => (_b + Rows - 1) / Rows;
    public int Groups => (Blocks + Group - 1) / Group;

    // ---- device math (moe_common.cuh), float32 ----
    static float Softplus(float x) => (x > 0f ? x : 0f) + MathF.Log(1f + MathF.Exp(-MathF.Abs(x)));
    static float Sigmoid(float x) { if (x >= 0f) return 1f / (1f + MathF.Exp(-x)); float e = MathF.Exp(x); return e / (1f + e); }
    static float Erfc(float x)
    {
        float z = MathF.Abs(x), t = 1f / (1f + 0.5f * z);
        float p = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f +
                  t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
        float r = t * MathF.Exp(-z * z + p);
        return x >= 0f ? r : 2f - r;
    }
    static float NormCdf(float z) => 0.5f * Erfc(-z * 0.70710678118654752f);
    static float NormPdf(float z) => 0.39894228040143268f * MathF.Exp(-0.5f * z * z);

    /// <summary>One row's state as every lane of the warp holds it (experts indexed directly).</summary>
    public sealed class Row
    {
        public float[] C = [], S = [], Eps = [], Nz = [], Gate = [];
        public bool[] InTop = [];
        public int[] TopI = [];
        public float[] TopV = [], TopG = [];
        public float ThrIn, ThrOut;
    }

    public Row ComputeRow(int row)
    {
        int e = _e, k = _k, m = Math.Min(k + 1, e);
        bool noisy = _raw is not null;
        var r = new Row
        {
            C = new float[64], S = new float[64], Eps = new float[64], Nz = new float[64], Gate = new float[64], InTop = new bool[64],
            TopI = new int[m], TopV = new float[m], TopG = new float[k],
        };
        for (int x = 0; x < 64; x++)
        {
            r.S[x] = 1f;
            if (x >= e) continue;
            r.C[x] = _clean[row * e + x];
            if (noisy) { r.S[x] = Softplus(_raw![row * e + x]) + _floor; r.Eps[x] = _noise![row * e + x]; r.Nz[x] = r.C[x] + r.Eps[x] * r.S[x]; }
            else r.Nz[x] = r.C[x];
        }
        var taken = new bool[64];
        var lv = new float[32];
        for (int i = 0; i < m; i++)
        {
            // Lane-local best untaken (expert lane first, then lane + 32 only if strictly greater).
            for (int l = 0; l < 32; l++)
            {
                lv[l] = float.NegativeInfinity;
                for (int h = 0; h < 2; h++)
                {
                    int x = l + 32 * h;
                    if (x < e && !taken[x] && r.Nz[x] > lv[l]) lv[l] = r.Nz[x];
                }
            }
            // Butterfly max, all lanes at once.
            for (int off = 16; off > 0; off >>= 1)
            {
                var next = new float[32];
                for (int l = 0; l < 32; l++) { float o = lv[l ^ off]; next[l] = o > lv[l] ? o : lv[l]; }
                next.CopyTo(lv, 0);
            }
            float mx = lv[0];
            int win = -1;
            for (int l = 0; l < 32 && win < 0; l++) if (l < e && !taken[l] && r.Nz[l] == mx) win = l;            // ballot b0
            for (int l = 0; l < 32 && win < 0; l++) if (l + 32 < e && !taken[l + 32] && r.Nz[l + 32] == mx) win = l + 32;   // b1
            if (win < 0)
            {
                for (int x = 0; x < e && win < 0; x++) if (!taken[x]) win = x;
                mx = r.Nz[win];
            }
            r.TopV[i] = mx; r.TopI[i] = win; taken[win] = true;
        }
        float sum = 0f;
        for (int i = 0; i < k; i++) { r.TopG[i] = MathF.Exp(r.TopV[i] - r.TopV[0]); sum += r.TopG[i]; }
        for (int i = 0; i < k; i++) { r.TopG[i] /= sum; r.Gate[r.TopI[i]] = r.TopG[i]; r.InTop[r.TopI[i]] = true; }
        r.ThrIn = k < m ? r.TopV[k] : 0f;
        r.ThrOut = r.TopV[k - 1];
        return r;
    }

    public sealed record Forward(float[] Packed, int[] TopIdx, float[] TopGates, float Aux, float Cv2Imp, float Cv2Load,
        int GroupElections, int FinalElections, uint[] CountersAfter);

    /// <summary>
    /// The forward pass; blocks "finish" in <paramref name="finishOrder"/> (a permutation of the blocks; null: in
    /// order), which decides only which block is elected to sum a group and which one sums the groups.
    /// </summary>
    public Forward RunForward(float wImp, float wLoad, int[]? finishOrder = null)
    {
        int b = _b, e = _e, k = _k, nblk = Blocks, ngroups = Groups;
        bool prob = _raw is not null && k < e;
        var packed = new float[(b + 2) * e];
        var topIdx = new int[b * k]; var topGates = new float[b * k];
        var part = new float[2 * nblk * e];          // [2, nblk, E]
        for (int blk = 0; blk < nblk; blk++)
        {
            var warpImp = new float[Warps, 64]; var warpLoad = new float[Warps, 64];
            for (int w = 0; w < Warps; w++)
                for (int i = 0; i < RowsPerWarp; i++)
                {
                    int row = blk * Rows + w * RowsPerWarp + i;
                    if (row >= b) break;
                    var r = ComputeRow(row);
                    for (int x = 0; x < e; x++)
                    {
                        packed[row * e + x] = r.Gate[x];
                        warpImp[w, x] += r.Gate[x];
                        warpLoad[w, x] += prob ? NormCdf((r.C[x] - (r.InTop[x] ? r.ThrIn : r.ThrOut)) / r.S[x]) : (r.InTop[x] ? 1f : 0f);
                    }
                    for (int j = 0; j < k; j++) { topIdx[row * k + j] = r.TopI[j]; topGates[row * k + j] = r.TopG[j]; }
                }
            for (int x = 0; x < e; x++)
            {
                float a = warpImp[0, x], l = warpLoad[0, x];
                for (int w = 1; w < Warps; w++) { a += warpImp[w, x]; l += warpLoad[w, x]; }
                part[(0 * nblk + blk) * e + x] = a;
                part[(1 * nblk + blk) * e + x] = l;
            }
        }
        // Elections in finish order; each elected block sums in the fixed order.
        var counters = new uint[ngroups + 1];
        var gpart = new float[2 * ngroups * e];
        int groupElections = 0, finalElections = 0;
        var totals = new float[2, 64];
        foreach (int blk in finishOrder ?? Enumerable.Range(0, nblk).ToArray())
        {
            int g = blk / Group, gb0 = g * Group, gb1 = Math.Min(gb0 + Group, nblk);
            if (counters[g]++ != (uint)(gb1 - gb0 - 1)) continue;
            groupElections++;
            for (int q = 0; q < 2; q++)
                for (int x = 0; x < e; x++)
                {
                    float a = part[(q * nblk + gb0) * e + x];
                    for (int bb = gb0 + 1; bb < gb1; bb++) a += part[(q * nblk + bb) * e + x];
                    gpart[(q * ngroups + g) * e + x] = a;
                }
            counters[g] = 0;
            if (counters[ngroups]++ != (uint)(ngroups - 1)) continue;
            finalElections++;
            for (int q = 0; q < 2; q++)
                for (int x = 0; x < e; x++)
                {
                    float a = gpart[(q * ngroups + 0) * e + x];
                    for (int gg = 1; gg < ngroups; gg++) a += gpart[(q * ngroups + gg) * e + x];
                    packed[(b + q) * e + x] = a;
                    totals[q, x] = a;
                }
            counters[ngroups] = 0;
        }
        float ci = Cv2(Enumerable.Range(0, e).Select(x => totals[0, x]).ToArray(), out _, out _);
        float cl = Cv2(Enumerable.Range(0, e).Select(x => totals[1, x]).ToArray(), out _, out _);
        return new Forward(packed, topIdx, topGates, wImp * ci + wLoad * cl, ci, cl, groupElections, finalElections, counters);
    }

    static float Cv2(float[] v, out float mean, out float var)
    {
        float s = 0f;
        foreach (var x in v) s += x;
        mean = s / v.Length;
        float q = 0f;
        foreach (var x in v) { float d = x - mean; q += d * d; }
        var = q / v.Length;
        return var / (mean * mean + 1e-10f);
    }

    static float Cv2Grad(float ve, float mean, float var, int e)
    {
        float d = mean * mean + 1e-10f;
        return (2f * (ve - mean) / e) / d - var * (2f * mean / e) / (d * d);
    }

    /// <summary>The backward: gradClean [B, E] and gradRaw [B, E] (null when noiseless).</summary>
    public (float[] GradClean, float[]? GradRaw) RunBackward(float[] packed, float[]? gradPacked, float gradAux, float wImp, float wLoad)
    {
        int b = _b, e = _e, k = _k;
        bool noisy = _raw is not null, prob = noisy && k < e;
        var imp = new float[e]; var load = new float[e];
        for (int x = 0; x < e; x++) { imp[x] = packed[b * e + x]; load[x] = packed[(b + 1) * e + x]; }
        Cv2(imp, out float mi, out float vi); Cv2(load, out float ml, out float vl);
        var dImp = new float[e]; var dLoad = new float[e];
        for (int x = 0; x < e; x++)
        {
            dImp[x] = (gradPacked?[b * e + x] ?? 0f) + gradAux * wImp * Cv2Grad(imp[x], mi, vi, e);
            dLoad[x] = (gradPacked?[(b + 1) * e + x] ?? 0f) + gradAux * wLoad * Cv2Grad(load[x], ml, vl, e);
        }
        var gc = new float[b * e]; var gr = noisy ? new float[b * e] : null;
        for (int row = 0; row < b; row++)
        {
            var r = ComputeRow(row);
            var dg = new float[e]; var dn = new float[e]; var dc = new float[e]; var ds = new float[e];
            for (int x = 0; x < e; x++) dg[x] = (gradPacked?[row * e + x] ?? 0f) + dImp[x];
            float dot = 0f;
            for (int j = 0; j < k; j++) { int x = r.TopI[j]; dot += r.Gate[x] * dg[x]; }
            for (int x = 0; x < e; x++) if (r.InTop[x]) dn[x] = r.Gate[x] * (dg[x] - dot);
            if (prob)
            {
                var inLane = new float[32]; var outLane = new float[32];
                for (int l = 0; l < 32; l++)
                    for (int h = 0; h < 2; h++)
                    {
                        int x = l + 32 * h;
                        if (x >= e) continue;
                        float z = (r.C[x] - (r.InTop[x] ? r.ThrIn : r.ThrOut)) / r.S[x];
                        float coef = dLoad[x] * NormPdf(z) / r.S[x];
                        dc[x] = coef; ds[x] = -coef * z;
                        if (r.InTop[x]) inLane[l] += coef; else outLane[l] += coef;
                    }
                for (int off = 16; off > 0; off >>= 1)
                {
                    var ni = new float[32]; var no = new float[32];
                    for (int l = 0; l < 32; l++) { ni[l] = inLane[l] + inLane[l ^ off]; no[l] = outLane[l] + outLane[l ^ off]; }
                    inLane = ni; outLane = no;
                }
                dn[r.TopI[k]] -= inLane[0];
                dn[r.TopI[k - 1]] -= outLane[0];
            }
            for (int x = 0; x < e; x++)
            {
                gc[row * e + x] = dc[x] + dn[x];
                if (noisy) gr![row * e + x] = (ds[x] + dn[x] * r.Eps[x]) * Sigmoid(_raw![row * e + x]);
            }
        }
        return (gc, gr);
    }
}
