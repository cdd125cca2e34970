// Fused optimizer updates, one thread per parameter element, in place (PyTorch semantics).
//   sgd_momentum_<dtype>(i64 n, T* p, const T* g, T* buf, T lr, T momentum, T dampening, T weightDecay,
//                        int nesterov, int firstStep)
//       d = g + wd·p;  buf = firstStep ? d : momentum·buf + (1 − dampening)·d;  d = nesterov ? d + momentum·buf : buf;
//       p −= lr·d        (momentum == 0: buf is not touched and may be null)
//   adamw_<dtype>(i64 n, T* p, const T* g, T* m, T* v, T lr, T beta1, T beta2, T eps, T weightDecay,
//                 T biasCorrection1, T biasCorrection2)          biasCorrectionK = 1 − betaK^step, from the host
//       p −= lr·wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= lr·(m/bc1) / (√(v/bc2) + eps)
#include "common.cuh"

DEVINLINE float sqrt_t(float x) { return sqrt_f(x); }
DEVINLINE double sqrt_t(double x) { return sqrt_d(x); }

template <typename T>
DEVINLINE void sgd_momentum(i64 n, T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, T lr, T momentum,
                            T dampening, T weightDecay, int nesterov, int firstStep) {
  GRID_LOOP(i, n) {
    T d = g[i] + weightDecay * p[i];
    if (momentum != (T)0) {
      T b = firstStep ? d : momentum * buf[i] + ((T)1 - dampening) * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] -= lr * d;
  }
}

template <typename T>
DEVINLINE void adamw(i64 n, T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v, T lr,
                     T beta1, T beta2, T eps, T weightDecay, T bc1, T bc2) {
  GRID_LOOP(i, n) {
    T w = p[i] * ((T)1 - lr * weightDecay);
    T gi = g[i];
    T mi = beta1 * m[i] + ((T)1 - beta1) * gi;
    T vi = beta2 * v[i] + ((T)1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = w - lr * (mi / bc1) / (sqrt_t(vi / bc2) + eps);
  }
}

#define OPTIM_KERNELS(T, sfx)                                                                                   \
  KERNEL void sgd_momentum_##sfx(i64 n, T* p, const T* g, T* buf, T lr, T momentum, T dampening, T weightDecay, \
                                 int nesterov, int firstStep) {                                                 \
    sgd_momentum(n, p, g, buf, lr, momentum, dampening, weightDecay, nesterov, firstStep); }                    \
  KERNEL void adamw_##sfx(i64 n, T* p, const T* g, T* m, T* v, T lr, T beta1, T beta2, T eps, T weightDecay,    \
                          T bc1, T bc2) {                                                                       \
    adamw(n, p, g, m, v, lr, beta1, beta2, eps, weightDecay, bc1, bc2); }

OPTIM_KERNELS(float, f32)
OPTIM_KERNELS(double, f64)
