using System.Numerics;

namespace MtlMoe.Engine.Backends.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void SgdUpdate(StorageView paramView, StorageView gradView, StorageView? momentumBufferView,
        double lr, double momentum, double dampening, double weightDecay, bool nesterov, bool initBuffer)
    {
        var (param, paramLayout) = paramView;
        var (grad, gradLayout) = gradView;
        var (momentumBuffer, bufferLayout) = StorageView.SplitNullable(momentumBufferView);
        int n = CheckOptimOperands("sgd_update", param, paramLayout, (grad, gradLayout), (momentumBuffer, bufferLayout));
        if (momentum != 0 && momentumBuffer is null) throw new ArgumentException("sgd_update: momentum needs a momentum buffer");
        int ob = bufferLayout?.Offset ?? 0;
        if (param.DType == DType.Float32)
            SgdT(Arr<float>(param), paramLayout.Offset, Arr<float>(grad), gradLayout.Offset, momentumBuffer is null ? null : Arr<float>(momentumBuffer), ob, n,
                (float)lr, (float)momentum, (float)(1 - dampening), (float)weightDecay, nesterov, initBuffer);
        else
            SgdT(Arr<double>(param), paramLayout.Offset, Arr<double>(grad), gradLayout.Offset, momentumBuffer is null ? null : Arr<double>(momentumBuffer), ob, n,
                lr, momentum, 1 - dampening, weightDecay, nesterov, initBuffer);
    }

    /// <inheritdoc />
    public void AdamWUpdate(StorageView paramView, StorageView gradView, StorageView mView, StorageView vView,
        double lr, double beta1, double beta2, double eps, double weightDecay, double biasCorrection1, double biasCorrection2)
    {
        var (param, paramLayout) = paramView;
        var (grad, gradLayout) = gradView;
        var (m, mLayout) = mView;
        var (v, vLayout) = vView;
        int n = CheckOptimOperands("adamw_update", param, paramLayout, (grad, gradLayout), (m, mLayout), (v, vLayout));
        // Scalars are formed in double, then rounded once to the element type (as PyTorch passes Python floats).
        double decay = 1 - lr * weightDecay, stepSize = lr / biasCorrection1, bc2Sqrt = Math.Sqrt(biasCorrection2), w = 1 - beta1;
        if (param.DType == DType.Float32)
            AdamWT(Arr<float>(param), paramLayout.Offset, Arr<float>(grad), gradLayout.Offset, Arr<float>(m), mLayout.Offset, Arr<float>(v), vLayout.Offset, n,
                (float)decay, (float)w, (float)beta2, (float)(1 - beta2), (float)stepSize, (float)bc2Sqrt, (float)eps);
        else
            AdamWT(Arr<double>(param), paramLayout.Offset, Arr<double>(grad), gradLayout.Offset, Arr<double>(m), mLayout.Offset, Arr<double>(v), vLayout.Offset, n,
                decay, w, beta2, 1 - beta2, stepSize, bc2Sqrt, eps);
    }

    private int CheckOptimOperands(string op, Storage param, Layout pl, params (Storage? s, Layout? l)[] others)
    {
        if (param.DType is not (DType.Float32 or DType.Float64))
            throw new NotSupportedException($"{op}: parameter must be float32 or float64 (master weights and optimizer state stay float32 under autocast), got {param.DType.Name()} {Shapes.Format(pl.Shape)}");
        if (!pl.IsContiguous) throw new ArgumentException($"{op}: parameter {Shapes.Format(pl.Shape)} must be contiguous");
        foreach (var (s, l) in others)
        {
            if (s is null) continue;
            if (l is not { } lay || !lay.IsContiguous || lay.Count != pl.Count)
                throw new ShapeException($"{op}: operand {(l is { } x ? Shapes.Format(x.Shape) : "without layout")} must be contiguous with the parameter's {pl.Count} elements {Shapes.Format(pl.Shape)}");
            if (s.DType != param.DType) throw new ArgumentException($"{op}: operand dtype {s.DType.Name()} differs from the parameter's {param.DType.Name()}");
        }
        return pl.Count;
    }

    // p: [n] at op, g: [n] at og, buf: [n] at ob (null without momentum). dampKeep = 1 − dampening.
    private void SgdT<T>(T[] p, int op, T[] g, int og, T[]? buf, int ob, int n,
        T lr, T mu, T dampKeep, T wd, bool nesterov, bool init) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool hasWd = wd != T.Zero, hasMu = buf is not null && mu != T.Zero;
        StridedIter.ParallelChunks(Options, n, 4, (lo, hi) =>
        {
            int i = (int)lo, end = (int)hi, W = Vector<T>.Count;
            var vLr = new Vector<T>(lr); var vMu = new Vector<T>(mu); var vDk = new Vector<T>(dampKeep); var vWd = new Vector<T>(wd);
            if (Vector.IsHardwareAccelerated)
            {
                for (; i <= end - W; i += W)
                {
                    var pv = new Vector<T>(p, op + i);
                    var d = new Vector<T>(g, og + i);
                    if (hasWd) d += vWd * pv;
                    if (hasMu)
                    {
                        var b = init ? d : vMu * new Vector<T>(buf!, ob + i) + vDk * d;
                        b.CopyTo(buf!, ob + i);
                        d = nesterov ? d + vMu * b : b;
                    }
                    (pv - vLr * d).CopyTo(p, op + i);
                }
            }
            for (; i < end; i++)
            {
                T pv = p[op + i], d = g[og + i];
                if (hasWd) d += wd * pv;
                if (hasMu)
                {
                    T b = init ? d : mu * buf![ob + i] + dampKeep * d;
                    buf![ob + i] = b;
                    d = nesterov ? d + mu * b : b;
                }
                p[op + i] = pv - lr * d;
            }
        });
    }

    // Operation order follows PyTorch's addcmul/addcdiv kernels ((value·t1)·t2, (value·t1)/t2).
    // p, g, m, v: [n] each at their offsets. w = 1 − β₁ (the lerp weight), oneMinusB2 = 1 − β₂.
    private void AdamWT<T>(T[] p, int op, T[] g, int og, T[] m, int om, T[] v, int ov, int n,
        T decay, T w, T b2, T oneMinusB2, T stepSize, T bc2Sqrt, T eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        // lerp(m, g, w) as PyTorch evaluates it: m + w·(g − m) when w < ½, else g − (1 − w)·(g − m).
        bool lowWeight = w < T.CreateTruncating(0.5);
        T wOther = lowWeight ? w : T.One - w;
        StridedIter.ParallelChunks(Options, n, 12, (lo, hi) =>
        {
            int i = (int)lo, end = (int)hi, W = Vector<T>.Count;
            var vDecay = new Vector<T>(decay); var vW = new Vector<T>(wOther); var vB2 = new Vector<T>(b2); var vOmb2 = new Vector<T>(oneMinusB2);
            var vStep = new Vector<T>(stepSize); var vBc2 = new Vector<T>(bc2Sqrt); var vEps = new Vector<T>(eps);
            if (Vector.IsHardwareAccelerated)
            {
                for (; i <= end - W; i += W)
                {
                    var pv = new Vector<T>(p, op + i) * vDecay;
                    var gv = new Vector<T>(g, og + i);
                    var mv = new Vector<T>(m, om + i);
                    var diff = gv - mv;
                    mv = lowWeight ? mv + vW * diff : gv - vW * diff;
                    var vv = vB2 * new Vector<T>(v, ov + i) + vOmb2 * gv * gv;
                    var denom = Vector.SquareRoot(vv) / vBc2 + vEps;
                    (pv - vStep * mv / denom).CopyTo(p, op + i);
                    mv.CopyTo(m, om + i);
                    vv.CopyTo(v, ov + i);
                }
            }
            for (; i < end; i++)
            {
                T pv = p[op + i] * decay, gv = g[og + i], mv = m[om + i];
                T diff = gv - mv;
                mv = lowWeight ? mv + wOther * diff : gv - wOther * diff;
                T vv = b2 * v[ov + i] + oneMinusB2 * gv * gv;
                T denom = T.Sqrt(vv) / bc2Sqrt + eps;
                p[op + i] = pv - stepSize * mv / denom;
                m[om + i] = mv;
                v[ov + i] = vv;
            }
        });
    }
}
