using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

// Batch-norm over NCHW: one thread per channel (its N planes of H·W), statistics summed in double in a fixed order.
public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public (Storage Y, Storage Mean, Storage InvStd) BatchNorm2dTrainForward(StorageView x, StorageView? weight, StorageView? bias,
        StorageView runningMean, StorageView runningVar, double momentum, double eps)
        => BnTrain(x, weight, bias, runningMean, runningVar, momentum, eps, relu: false, residual: null, "batch_norm2d");

    /// <inheritdoc />
    public Storage BatchNorm2dEvalForward(StorageView x, StorageView? weight, StorageView? bias,
        StorageView runningMean, StorageView runningVar, double eps) => x.DType switch
    {
        DType.Float32 => BnEvalT<float>(x, weight, bias, runningMean, runningVar, eps),
        DType.Float64 => BnEvalT<double>(x, weight, bias, runningMean, runningVar, eps),
        DType.BFloat16 => BnEvalBf16(x, weight, bias, runningMean, runningVar, eps),
        _ => throw Unsupported("batch_norm2d", x.DType),
    };

    /// <inheritdoc />
    public (Storage Dx, Storage DWeight, Storage DBias) BatchNorm2dBackward(StorageView dy, StorageView x,
        StorageView mean, StorageView invStd, StorageView? weight, bool batchStats)
        => BnBack(dy, x, mean, invStd, weight, batchStats, reluY: null, "batch_norm2d backward");

    // Training forward of every fused variant (relu; relu with a residual added before it), by dtype.
    private (Storage, Storage, Storage) BnTrain(StorageView x, StorageView? weight, StorageView? bias, StorageView runningMean,
        StorageView runningVar, double momentum, double eps, bool relu, StorageView? residual, string op) => x.DType switch
    {
        DType.Float32 => BnTrainT<float>(x, weight, bias, runningMean, runningVar, momentum, eps, relu, residual),
        DType.Float64 => BnTrainT<double>(x, weight, bias, runningMean, runningVar, momentum, eps, relu, residual),
        DType.BFloat16 => BnTrainBf16(x, weight, bias, runningMean, runningVar, momentum, eps, relu, residual, op),
        _ => throw Unsupported(op, x.DType),
    };

    // Backward of every variant (reluY: the fused ReLU's output, whose y > 0 masks dy), by dtype.
    private (Storage, Storage, Storage) BnBack(StorageView dy, StorageView x, StorageView mean, StorageView invStd, StorageView? weight,
        bool batchStats, StorageView? reluY, string op) => x.DType switch
    {
        DType.Float32 => BnBackT<float>(dy, x, mean, invStd, weight, batchStats, reluY),
        DType.Float64 => BnBackT<double>(dy, x, mean, invStd, weight, batchStats, reluY),
        DType.BFloat16 => BnBackBf16(dy, x, mean, invStd, weight, batchStats, reluY, op),
        _ => throw Unsupported(op, x.DType),
    };

    // Per-channel value of an optional [C] tensor (fallback when absent).
    private static double ChannelValue<T>(Storage? s, Layout l, int c, double fallback) where T : unmanaged, INumber<T>
        => s is null ? fallback : double.CreateTruncating(Arr<T>(s)[NchwDense.At(l, c)]);

    private (Storage, Storage, Storage) BnTrainT<T>(StorageView xv, StorageView? wv, StorageView? bv, StorageView rmv, StorageView rvv,
        double momentum, double eps, bool relu, StorageView? resv) where T : unmanaged, INumber<T>
    {
        var (xs, lx) = xv; var (ws, lw) = StorageView.Split(wv); var (bs, lb) = StorageView.Split(bv);
        var (rms, lrm) = rmv; var (rvs, lrv) = rvv; var (resS, lres) = StorageView.Split(resv);
        var (x, xo) = NchwDense.Of<T>(Options, xs, lx); // x: [N, C, H, W]
        // With a residual (added before the ReLU): res: [N, C, H, W] like x.
        var (res, reso) = resS is null ? (null, 0) : NchwDense.Of<T>(Options, resS, lres);
        int n = lx.Shape[0], c = lx.Shape[1], plane = lx.Shape[2] * lx.Shape[3];
        long m = (long)n * plane;
        var ys = NewStorage(xs.DType, n * c * plane);
        var meanS = NewStorage(xs.DType, c);
        var invS = NewStorage(xs.DType, c);
        T[] y = ys.Array<T>(), mean = meanS.Array<T>(), inv = invS.Array<T>(); // y like x; mean, inv: [C]
        T[] rm = Arr<T>(rms), rv = Arr<T>(rvs);
        // Statistics in one sweep over memory (sums of deviations and of their squares about a shift near the mean), unless
        // "bn-stats-one-pass" is off: then a sum pass, then a squared-deviation pass.
        bool onePass = Options.On(CpuPath.BnStatsOnePass);
        StridedIter.ParallelChunks(Options, c, 3 * m, (lo, hi) =>
        {
            for (int ch = (int)lo; ch < hi; ch++)
            {
                double ss = 0, mu;
                if (onePass)
                {
                    // One sweep: deviations about a shift k near the mean (the mean of the channel's first plane,
                    // a 1/N extra read from cache), D = Σ(x − k) and Q = Σ(x − k)², so μ = k + D/m and
                    // Σ(x − μ)² = Q − D²/m stay well conditioned whatever the offset of the data.
                    T k = T.CreateTruncating(ChannelVec.Sum<T>(x.AsSpan(xo + ch * plane, plane)) / plane);
                    double d = 0, q = 0;
                    for (int i = 0; i < n; i++)
                    {
                        var (di, qi) = ChannelVec.SumDevSq(x.AsSpan(xo + (i * c + ch) * plane, plane), k);
                        d += di; q += qi;
                    }
                    mu = double.CreateTruncating(k) + d / m;
                    ss = Math.Max(q - d * d / m, 0);
                }
                else
                {
                    double s = 0;
                    for (int i = 0; i < n; i++) s += ChannelVec.Sum<T>(x.AsSpan(xo + (i * c + ch) * plane, plane));
                    mu = s / m;
                    T muT0 = T.CreateTruncating(mu);
                    for (int i = 0; i < n; i++) ss += ChannelVec.SumSqDev(x.AsSpan(xo + (i * c + ch) * plane, plane), muT0);
                }
                T muT = T.CreateTruncating(mu);
                double var = ss / m, istd = 1 / Math.Sqrt(var + eps);
                mean[ch] = muT; inv[ch] = T.CreateTruncating(istd);
                double scale = ChannelValue<T>(ws, lw, ch, 1) * istd;
                double shift = ChannelValue<T>(bs, lb, ch, 0) - mu * scale;
                for (int i = 0; i < n; i++)
                {
                    int o = (i * c + ch) * plane;
                    if (res is not null) ChannelVec.AffineAddRelu<T>(x.AsSpan(xo + o, plane), T.CreateTruncating(scale), T.CreateTruncating(shift), res.AsSpan(reso + o, plane), y.AsSpan(o, plane));
                    else if (relu) ChannelVec.AffineRelu<T>(x.AsSpan(xo + o, plane), T.CreateTruncating(scale), T.CreateTruncating(shift), y.AsSpan(o, plane));
                    else ChannelVec.Affine<T>(x.AsSpan(xo + o, plane), T.CreateTruncating(scale), T.CreateTruncating(shift), y.AsSpan(o, plane));
                }
                int ri = NchwDense.At(lrm, ch), vi = NchwDense.At(lrv, ch);
                double unbiased = m > 1 ? ss / (m - 1) : double.NaN;
                rm[ri] = T.CreateTruncating((1 - momentum) * double.CreateTruncating(rm[ri]) + momentum * mu);
                rv[vi] = T.CreateTruncating((1 - momentum) * double.CreateTruncating(rv[vi]) + momentum * unbiased);
            }
        });
        return (ys, meanS, invS);
    }

    private Storage BnEvalT<T>(StorageView xv, StorageView? wv, StorageView? bv, StorageView rmv, StorageView rvv, double eps)
        where T : unmanaged, INumber<T>
    {
        var (xs, lx) = xv; var (ws, lw) = StorageView.Split(wv); var (bs, lb) = StorageView.Split(bv);
        var (rms, lrm) = rmv; var (rvs, lrv) = rvv;
        var (x, xo) = NchwDense.Of<T>(Options, xs, lx); // x: [N, C, H, W]
        int n = lx.Shape[0], c = lx.Shape[1], plane = lx.Shape[2] * lx.Shape[3];
        var ys = NewStorage(xs.DType, n * c * plane);
        var y = ys.Array<T>();                 // y: [N, C, H, W]
        T[] rm = Arr<T>(rms), rv = Arr<T>(rvs);
        StridedIter.ParallelChunks(Options, c, (long)n * plane, (lo, hi) =>
        {
            for (int ch = (int)lo; ch < hi; ch++)
            {
                double istd = 1 / Math.Sqrt(double.CreateTruncating(rv[NchwDense.At(lrv, ch)]) + eps);
                double scale = ChannelValue<T>(ws, lw, ch, 1) * istd;
                double shift = ChannelValue<T>(bs, lb, ch, 0) - double.CreateTruncating(rm[NchwDense.At(lrm, ch)]) * scale;
                for (int i = 0; i < n; i++)
                {
                    int o = (i * c + ch) * plane;
                    ChannelVec.Affine<T>(x.AsSpan(xo + o, plane), T.CreateTruncating(scale), T.CreateTruncating(shift), y.AsSpan(o, plane));
                }
            }
        });
        return ys;
    }

    private (Storage, Storage, Storage) BnBackT<T>(StorageView dyv, StorageView xv, StorageView meanv, StorageView invv, StorageView? wv,
        bool batchStats, StorageView? reluYv) where T : unmanaged, INumber<T>
    {
        var (dys, ldy) = dyv; var (xs, lx) = xv; var (means, lmean) = meanv; var (invs, linv) = invv;
        var (ws, lw) = StorageView.Split(wv); var (reluYs, lreluY) = StorageView.Split(reluYv);
        var (dy, dyo) = NchwDense.Of<T>(Options, dys, ldy); // dy: [N, C, H, W]
        // With a fused ReLU, dy is masked by its output y > 0 (y: [N, C, H, W]) inside every pass.
        var (ry, ryo) = reluYs is null ? (null, 0) : NchwDense.Of<T>(Options, reluYs, lreluY);
        var (x, xo) = NchwDense.Of<T>(Options, xs, lx);     // x: [N, C, H, W]
        int n = lx.Shape[0], c = lx.Shape[1], plane = lx.Shape[2] * lx.Shape[3];
        long m = (long)n * plane;
        var dxs = NewStorage(xs.DType, n * c * plane);
        var dws = NewStorage(xs.DType, c);
        var dbs = NewStorage(xs.DType, c);
        T[] dx = dxs.Array<T>(), dw = dws.Array<T>(), db = dbs.Array<T>(); // dx like x; dw, db: [C]
        T[] mean = Arr<T>(means), inv = Arr<T>(invs);
        StridedIter.ParallelChunks(Options, c, 3 * m, (lo, hi) =>
        {
            for (int ch = (int)lo; ch < hi; ch++)
            {
                T muT = mean[NchwDense.At(lmean, ch)];
                double istd = double.CreateTruncating(inv[NchwDense.At(linv, ch)]), mu = double.CreateTruncating(muT);
                double sdy = 0, sdyxc = 0; // Σ dy, Σ dy·(x − μ)
                for (int i = 0; i < n; i++)
                {
                    var xp = x.AsSpan(xo + (i * c + ch) * plane, plane);
                    var dp = dy.AsSpan(dyo + (i * c + ch) * plane, plane);
                    if (ry is not null)
                    {
                        var (s0, s1) = ChannelVec.MaskedSums<T>(dp, ry.AsSpan(ryo + (i * c + ch) * plane, plane), xp, muT);
                        sdy += s0; sdyxc += s1;
                        continue;
                    }
                    sdy += ChannelVec.Sum<T>(dp);
                    sdyxc += ChannelVec.SumProdDev<T>(xp, muT, dp);
                }
                db[ch] = T.CreateTruncating(sdy);
                dw[ch] = T.CreateTruncating(sdyxc * istd); // Σ dy·x̂
                double a = ChannelValue<T>(ws, lw, ch, 1) * istd;
                // Training: dx = a·(dy − Σdy/M − x̂·Σdy·x̂/M) = a·dy + bx·x + c0; eval: dx = a·dy.
                double bx = batchStats ? -a * istd * istd * sdyxc / m : 0;
                double c0 = batchStats ? -a * sdy / m - bx * mu : 0;
                for (int i = 0; i < n; i++)
                {
                    int o = (i * c + ch) * plane;
                    if (ry is not null)
                        ChannelVec.MaskedAffine2<T>(dy.AsSpan(dyo + o, plane), ry.AsSpan(ryo + o, plane), T.CreateTruncating(a), x.AsSpan(xo + o, plane),
                            T.CreateTruncating(bx), T.CreateTruncating(c0), dx.AsSpan(o, plane));
                    else ChannelVec.Affine2<T>(dy.AsSpan(dyo + o, plane), T.CreateTruncating(a), x.AsSpan(xo + o, plane),
                        T.CreateTruncating(bx), T.CreateTruncating(c0), dx.AsSpan(o, plane));
                }
            }
        });
        return (dxs, dws, dbs);
    }
}
