// Batch norm (+ optional fused ReLU) over NCHW with per-channel statistics; reductions are one block of BLOCK
// threads per channel in a fixed order (no atomics). x, y, dy, dx: [N, C, HW]; per-channel vectors: [C].
//   bn_stats_<dtype>(N, C, HW, const T* x, T eps, T momentum, T* mean, T* invstd, T* runningMean, T* runningVar)
//       mean, biased var → invstd = 1/√(var + eps); running stats (skipped when null) updated with the unbiased var:
//       r = (1 − momentum)·r + momentum·stat
//   bn_relu_forward_<dtype>(N, C, HW, const T* x, const T* mean, const T* invstd, const T* gamma, const T* beta,
//                           int relu, T* y)        y = [relu] ((x − mean)·invstd·gamma + beta)
//   bn_relu_infer_<dtype>(N, C, HW, const T* x, const T* runningMean, const T* runningVar, T eps, const T* gamma,
//                         const T* beta, int relu, T* y)
//   bn_relu_backward_reduce_<dtype>(N, C, HW, const T* x, const T* y, const T* dy, const T* mean, const T* invstd,
//                                   int relu, T* dgamma, T* dbeta)
//       g = dy·[y > 0 when relu];  dbeta = Σ g;  dgamma = Σ g·x̂        (y is the forward output)
//   bn_relu_backward_dx_<dtype>(N, C, HW, const T* x, const T* y, const T* dy, const T* mean, const T* invstd,
//                               const T* gamma, const T* dgamma, const T* dbeta, int relu, T* dx)
//       dx = γ·invstd/M · (M·g − dbeta − x̂·dgamma),  M = N·HW
//   bn_add_relu_forward_<dtype>(N, C, HW, const T* x, const T* residual, const T* mean, const T* invstd,
//                               const T* gamma, const T* beta, T* y)      y = relu((x − mean)·invstd·gamma + beta + residual)
//   bn_add_relu_backward_dx_<dtype>(N, C, HW, x, y, dy, mean, invstd, gamma, dgamma, dbeta, T* dx, T* dresidual)
//       g = dy·[y > 0];  dresidual = g;  dx as bn_relu_backward_dx with relu = 1 (dgamma, dbeta from
//       bn_relu_backward_reduce with relu = 1 and the same y): the residual block's tail backward in two passes.
// bf16 variants (<op>_bf16): x, y, dy, dx, residual are bf16; mean, invstd, gamma, beta, dgamma, dbeta, running
// statistics, eps and momentum stay float32 (autocast keeps batch-norm statistics and parameters in float32);
// every sum runs in float32 and each stored activation is rounded once.
// Channels-last variants (<op>_nhwc_<f32|bf16>): the same kernels and arguments over activations stored [N, HW, C]
// (the CUDA backend's ChannelsLast option); only where an element of channel c lies changes (e·C + c instead of
// ((e / HW)·C + c)·HW + e % HW), so results equal the NCHW kernels' bit for bit.
#include "common.cuh"

// Memory index of the e-th element (e in [0, N·HW), image-major) of channel c, and the channel of memory index i.
template <bool NHWC> DEVINLINE i64 chan_at(i64 e, i64 c, i64 C, i64 HW) { return NHWC ? e * C + c : ((e / HW) * C + c) * HW + e % HW; }
template <bool NHWC> DEVINLINE i64 chan_of(i64 i, i64 C, i64 HW) { return NHWC ? i % C : (i / HW) % C; }

DEVINLINE float rsqrt_t(float x) { return 1.0f / sqrt_f(x); }
DEVINLINE double rsqrt_t(double x) { return 1.0 / sqrt_d(x); }

// S: stored activations; T = acc_t<S>: statistics, parameters and arithmetic.
template <bool NHWC, typename S, typename T = acc_t<S>>
DEVINLINE void bn_stats(i64 N, i64 C, i64 HW, const S* __restrict__ x, T eps, T momentum, T* __restrict__ mean,
                        T* __restrict__ invstd, T* __restrict__ runningMean, T* __restrict__ runningVar, T* scratch) {
  i64 M = N * HW;
  for (i64 c = ctaid_x(); c < C; c += nctaid_x()) {
    T s = (T)0;
    for (i64 e = tid_x(); e < M; e += BLOCK) s += ld(x[chan_at<NHWC>(e, c, C, HW)]);
    T mu = block_reduce(s, scratch, AddOp()) / (T)M;
    T q = (T)0;
    for (i64 e = tid_x(); e < M; e += BLOCK) { T d = ld(x[chan_at<NHWC>(e, c, C, HW)]) - mu; q += d * d; }
    T var = block_reduce(q, scratch, AddOp()) / (T)M;  // two-pass: no cancellation
    if (tid_x() == 0) {
      mean[c] = mu;
      invstd[c] = rsqrt_t(var + eps);
      if (runningMean) runningMean[c] = ((T)1 - momentum) * runningMean[c] + momentum * mu;
      if (runningVar) runningVar[c] = ((T)1 - momentum) * runningVar[c] + momentum * (M > 1 ? var * (T)M / (T)(M - 1) : var);
    }
  }
}

// Residual: add `residual` (dense like x) before the ReLU (relu is then always on).
template <bool Residual, bool NHWC, typename S, typename T = acc_t<S>>
DEVINLINE void bn_apply(i64 N, i64 C, i64 HW, const S* __restrict__ x, const S* __restrict__ residual, const T* __restrict__ mean,
                        const T* __restrict__ invstd, const T* __restrict__ gamma, const T* __restrict__ beta, int relu,
                        S* __restrict__ y) {
  GRID_LOOP(e, N * C * HW) {
    i64 c = chan_of<NHWC>(e, C, HW);
    T v = (ld(x[e]) - mean[c]) * invstd[c] * gamma[c] + beta[c];
    if (Residual) v += ld(residual[e]);
    y[e] = st<S>((relu && !(v > (T)0)) ? (T)0 : v);
  }
}

template <bool NHWC, typename S, typename T = acc_t<S>>
DEVINLINE void bn_infer(i64 N, i64 C, i64 HW, const S* __restrict__ x, const T* __restrict__ rm, const T* __restrict__ rv, T eps,
                        const T* __restrict__ gamma, const T* __restrict__ beta, int relu, S* __restrict__ y) {
  GRID_LOOP(e, N * C * HW) {
    i64 c = chan_of<NHWC>(e, C, HW);
    T v = (ld(x[e]) - rm[c]) * rsqrt_t(rv[c] + eps) * gamma[c] + beta[c];
    y[e] = st<S>((relu && !(v > (T)0)) ? (T)0 : v);
  }
}

template <bool NHWC, typename S, typename T = acc_t<S>>
DEVINLINE void bn_backward_reduce(i64 N, i64 C, i64 HW, const S* __restrict__ x, const S* __restrict__ y, const S* __restrict__ dy,
                                  const T* __restrict__ mean, const T* __restrict__ invstd, int relu, T* __restrict__ dgamma,
                                  T* __restrict__ dbeta, T* scratch) {
  i64 M = N * HW;
  for (i64 c = ctaid_x(); c < C; c += nctaid_x()) {
    T mu = mean[c], is = invstd[c];
    T sg = (T)0, sgx = (T)0;
    for (i64 e = tid_x(); e < M; e += BLOCK) {
      i64 at = chan_at<NHWC>(e, c, C, HW);
      T g = (relu && !(ld(y[at]) > (T)0)) ? (T)0 : ld(dy[at]);
      sg += g;
      sgx += g * (ld(x[at]) - mu) * is;
    }
    T b = block_reduce(sg, scratch, AddOp());
    T gm = block_reduce(sgx, scratch, AddOp());
    if (tid_x() == 0) { dbeta[c] = b; dgamma[c] = gm; }
  }
}

// ResidualGrad: also store g (the masked dy) as the residual's gradient.
template <bool ResidualGrad, bool NHWC, typename S, typename T = acc_t<S>>
DEVINLINE void bn_backward_dx(i64 N, i64 C, i64 HW, const S* __restrict__ x, const S* __restrict__ y, const S* __restrict__ dy,
                              const T* __restrict__ mean, const T* __restrict__ invstd, const T* __restrict__ gamma,
                              const T* __restrict__ dgamma, const T* __restrict__ dbeta, int relu, S* __restrict__ dx,
                              S* __restrict__ dres) {
  T M = (T)(N * HW);
  GRID_LOOP(e, N * C * HW) {
    i64 c = chan_of<NHWC>(e, C, HW);
    T g = (relu && !(ld(y[e]) > (T)0)) ? (T)0 : ld(dy[e]);
    T xh = (ld(x[e]) - mean[c]) * invstd[c];
    dx[e] = st<S>(gamma[c] * invstd[c] / M * (M * g - dbeta[c] - xh * dgamma[c]));
    if (ResidualGrad) dres[e] = st<S>(g);
  }
}

// S: stored activations; T: statistics and parameters (T = S except bf16 → float); L: NCHW (false) or NHWC (true).
#define NORM_KERNELS(S, T, L, sfx)                                                                                \
  KERNEL void bn_stats_##sfx(i64 N, i64 C, i64 HW, const S* x, T eps, T momentum, T* mean, T* invstd, T* rm, T* rv) { \
    __shared__ T s[BLOCK]; bn_stats<L>(N, C, HW, x, eps, momentum, mean, invstd, rm, rv, s); }                    \
  KERNEL void bn_relu_forward_##sfx(i64 N, i64 C, i64 HW, const S* x, const T* mean, const T* invstd, const T* gamma, \
                                    const T* beta, int relu, S* y) {                                              \
    bn_apply<false, L>(N, C, HW, x, (const S*)0, mean, invstd, gamma, beta, relu, y); }                           \
  KERNEL void bn_relu_infer_##sfx(i64 N, i64 C, i64 HW, const S* x, const T* rm, const T* rv, T eps, const T* gamma, \
                                  const T* beta, int relu, S* y) {                                                \
    bn_infer<L>(N, C, HW, x, rm, rv, eps, gamma, beta, relu, y); }                                                \
  KERNEL void bn_relu_backward_reduce_##sfx(i64 N, i64 C, i64 HW, const S* x, const S* y, const S* dy, const T* mean, \
                                            const T* invstd, int relu, T* dgamma, T* dbeta) {                     \
    __shared__ T s[BLOCK]; bn_backward_reduce<L>(N, C, HW, x, y, dy, mean, invstd, relu, dgamma, dbeta, s); }     \
  KERNEL void bn_relu_backward_dx_##sfx(i64 N, i64 C, i64 HW, const S* x, const S* y, const S* dy, const T* mean,  \
                                        const T* invstd, const T* gamma, const T* dgamma, const T* dbeta, int relu, S* dx) { \
    bn_backward_dx<false, L>(N, C, HW, x, y, dy, mean, invstd, gamma, dgamma, dbeta, relu, dx, (S*)0); }

// The residual-block tail (float activations and bf16; no float64 user).
#define NORM_ADD_KERNELS(S, T, L, sfx)                                                                            \
  KERNEL void bn_add_relu_forward_##sfx(i64 N, i64 C, i64 HW, const S* x, const S* residual, const T* mean,        \
                                        const T* invstd, const T* gamma, const T* beta, S* y) {                   \
    bn_apply<true, L>(N, C, HW, x, residual, mean, invstd, gamma, beta, 1, y); }                                  \
  KERNEL void bn_add_relu_backward_dx_##sfx(i64 N, i64 C, i64 HW, const S* x, const S* y, const S* dy, const T* mean, \
                                            const T* invstd, const T* gamma, const T* dgamma, const T* dbeta, S* dx, \
                                            S* dresidual) {                                                       \
    bn_backward_dx<true, L>(N, C, HW, x, y, dy, mean, invstd, gamma, dgamma, dbeta, 1, dx, dresidual); }

NORM_KERNELS(float, float, false, f32)
NORM_KERNELS(double, double, false, f64)
NORM_KERNELS(bf16, float, false, bf16)
NORM_ADD_KERNELS(float, float, false, f32)
NORM_ADD_KERNELS(bf16, float, false, bf16)
NORM_KERNELS(float, float, true, nhwc_f32)
NORM_KERNELS(bf16, float, true, nhwc_bf16)
NORM_ADD_KERNELS(float, float, true, nhwc_f32)
NORM_ADD_KERNELS(bf16, float, true, nhwc_bf16)
