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
#include "common.cuh"

DEVINLINE float rsqrt_t(float x) { return 1.0f / sqrt_f(x); }
DEVINLINE double rsqrt_t(double x) { return 1.0 / sqrt_d(x); }

template <typename T>
DEVINLINE void bn_stats(i64 N, i64 C, i64 HW, const T* __restrict__ x, T eps, T momentum, T* __restrict__ mean,
                        T* __restrict__ invstd, T* __restrict__ runningMean, T* __restrict__ runningVar, T* scratch) {
  i64 M = N * HW;
  for (i64 c = ctaid_x(); c < C; c += nctaid_x()) {
    T s = (T)0;
    for (i64 e = tid_x(); e < M; e += BLOCK) s += x[((e / HW) * C + c) * HW + e % HW];
    T mu = block_reduce(s, scratch, AddOp()) / (T)M;
    T q = (T)0;
    for (i64 e = tid_x(); e < M; e += BLOCK) { T d = x[((e / HW) * C + c) * HW + e % HW] - mu; q += d * d; }
    T var = block_reduce(q, scratch, AddOp()) / (T)M;  // two-pass: no cancellation
    if (tid_x() == 0) {
      mean[c] = mu;
      invstd[c] = rsqrt_t(var + eps);
      if (runningMean) runningMean[c] = ((T)1 - momentum) * runningMean[c] + momentum * mu;
      if (runningVar) runningVar[c] = ((T)1 - momentum) * runningVar[c] + momentum * (M > 1 ? var * (T)M / (T)(M - 1) : var);
    }
  }
}

template <typename T>
DEVINLINE void bn_apply(i64 N, i64 C, i64 HW, const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ invstd,
                        const T* __restrict__ gamma, const T* __restrict__ beta, int relu, T* __restrict__ y) {
  GRID_LOOP(e, N * C * HW) {
    i64 c = (e / HW) % C;
    T v = (x[e] - mean[c]) * invstd[c] * gamma[c] + beta[c];
    y[e] = (relu && !(v > (T)0)) ? (T)0 : v;
  }
}

template <typename T>
DEVINLINE void bn_infer(i64 N, i64 C, i64 HW, const T* __restrict__ x, const T* __restrict__ rm, const T* __restrict__ rv, T eps,
                        const T* __restrict__ gamma, const T* __restrict__ beta, int relu, T* __restrict__ y) {
  GRID_LOOP(e, N * C * HW) {
    i64 c = (e / HW) % C;
    T v = (x[e] - rm[c]) * rsqrt_t(rv[c] + eps) * gamma[c] + beta[c];
    y[e] = (relu && !(v > (T)0)) ? (T)0 : v;
  }
}

template <typename T>
DEVINLINE void bn_backward_reduce(i64 N, i64 C, i64 HW, const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ dy,
                                  const T* __restrict__ mean, const T* __restrict__ invstd, int relu, T* __restrict__ dgamma,
                                  T* __restrict__ dbeta, T* scratch) {
  i64 M = N * HW;
  for (i64 c = ctaid_x(); c < C; c += nctaid_x()) {
    T mu = mean[c], is = invstd[c];
    T sg = (T)0, sgx = (T)0;
    for (i64 e = tid_x(); e < M; e += BLOCK) {
      i64 at = ((e / HW) * C + c) * HW + e % HW;
      T g = (relu && !(y[at] > (T)0)) ? (T)0 : dy[at];
      sg += g;
      sgx += g * (x[at] - mu) * is;
    }
    T b = block_reduce(sg, scratch, AddOp());
    T gm = block_reduce(sgx, scratch, AddOp());
    if (tid_x() == 0) { dbeta[c] = b; dgamma[c] = gm; }
  }
}

template <typename T>
DEVINLINE void bn_backward_dx(i64 N, i64 C, i64 HW, const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ dy,
                              const T* __restrict__ mean, const T* __restrict__ invstd, const T* __restrict__ gamma,
                              const T* __restrict__ dgamma, const T* __restrict__ dbeta, int relu, T* __restrict__ dx) {
  T M = (T)(N * HW);
  GRID_LOOP(e, N * C * HW) {
    i64 c = (e / HW) % C;
    T g = (relu && !(y[e] > (T)0)) ? (T)0 : dy[e];
    T xh = (x[e] - mean[c]) * invstd[c];
    dx[e] = gamma[c] * invstd[c] / M * (M * g - dbeta[c] - xh * dgamma[c]);
  }
}

#define NORM_KERNELS(T, sfx)                                                                                      \
  KERNEL void bn_stats_##sfx(i64 N, i64 C, i64 HW, const T* x, T eps, T momentum, T* mean, T* invstd, T* rm, T* rv) { \
    __shared__ T s[BLOCK]; bn_stats(N, C, HW, x, eps, momentum, mean, invstd, rm, rv, s); }                       \
  KERNEL void bn_relu_forward_##sfx(i64 N, i64 C, i64 HW, const T* x, const T* mean, const T* invstd, const T* gamma, \
                                    const T* beta, int relu, T* y) {                                              \
    bn_apply(N, C, HW, x, mean, invstd, gamma, beta, relu, y); }                                                  \
  KERNEL void bn_relu_infer_##sfx(i64 N, i64 C, i64 HW, const T* x, const T* rm, const T* rv, T eps, const T* gamma, \
                                  const T* beta, int relu, T* y) {                                                \
    bn_infer(N, C, HW, x, rm, rv, eps, gamma, beta, relu, y); }                                                   \
  KERNEL void bn_relu_backward_reduce_##sfx(i64 N, i64 C, i64 HW, const T* x, const T* y, const T* dy, const T* mean, \
                                            const T* invstd, int relu, T* dgamma, T* dbeta) {                     \
    __shared__ T s[BLOCK]; bn_backward_reduce(N, C, HW, x, y, dy, mean, invstd, relu, dgamma, dbeta, s); }        \
  KERNEL void bn_relu_backward_dx_##sfx(i64 N, i64 C, i64 HW, const T* x, const T* y, const T* dy, const T* mean,  \
                                        const T* invstd, const T* gamma, const T* dgamma, const T* dbeta, int relu, T* dx) { \
    bn_backward_dx(N, C, HW, x, y, dy, mean, invstd, gamma, dgamma, dbeta, relu, dx); }

NORM_KERNELS(float, f32)
NORM_KERNELS(double, f64)
