// Shared declarations for our CUDA kernels. No CUDA headers: clang's NVPTX builtins stand in for them.
// Compiled by build-ptx.sh with: clang-14 -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 -O3 -S
#pragma once

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define DEVINLINE __device__ __attribute__((always_inline)) inline
#define KERNEL extern "C" __global__

typedef long long i64;

DEVINLINE int tid_x() { return __nvvm_read_ptx_sreg_tid_x(); }
DEVINLINE int ntid_x() { return __nvvm_read_ptx_sreg_ntid_x(); }
DEVINLINE int ctaid_x() { return __nvvm_read_ptx_sreg_ctaid_x(); }
DEVINLINE int nctaid_x() { return __nvvm_read_ptx_sreg_nctaid_x(); }
DEVINLINE void sync_threads() { __syncthreads(); }

// Grid-stride loop over [0, n): every kernel launch may use any grid size.
#define GRID_LOOP(i, n) \
  for (i64 i = (i64)ctaid_x() * ntid_x() + tid_x(); i < (n); i += (i64)nctaid_x() * ntid_x())

// Fast-but-accurate f32 transcendental helpers on the PTX approximate units (ex2/lg2 have ~2 ulp error;
// the range reduction adds |x|·2^-24 relative error, far below the 1e-3 parity thresholds).
DEVINLINE float exp_f(float x) { return __nvvm_ex2_approx_f(x * 1.4426950408889634f); }
DEVINLINE float log_f(float x) { return __nvvm_lg2_approx_f(x) * 0.6931471805599453f; }
DEVINLINE float sqrt_f(float x) { return __nvvm_sqrt_rn_f(x); }
DEVINLINE double sqrt_d(double x) { return __nvvm_sqrt_rn_d(x); }
DEVINLINE float tanh_f(float x) {
  // tanh(x) = sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|}): no overflow for large |x|.
  float a = __builtin_fabsf(x);
  float e = exp_f(-2.0f * a);
  float t = (1.0f - e) / (1.0f + e);
  return x < 0.0f ? -t : t;
}
DEVINLINE float sigmoid_f(float x) {
  // Branch keeps exp's argument ≤ 0 so it never overflows.
  if (x >= 0.0f) return 1.0f / (1.0f + exp_f(-x));
  float e = exp_f(x);
  return e / (1.0f + e);
}

DEVINLINE float max_f(float a, float b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }  // NaN wins
DEVINLINE float min_f(float a, float b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }
DEVINLINE double max_d(double a, double b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
DEVINLINE double min_d(double a, double b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }

// Deterministic block reduction (fixed tree order): every thread passes a value, thread 0 gets the result.
// `scratch` must hold ntid_x() elements; blockDim must be a power of two.
template <typename T, typename Op>
DEVINLINE T block_reduce(T v, T* scratch, Op op) {
  int t = tid_x();
  scratch[t] = v;
  sync_threads();
  for (int s = ntid_x() / 2; s > 0; s >>= 1) {
    if (t < s) scratch[t] = op(scratch[t], scratch[t + s]);
    sync_threads();
  }
  T r = scratch[0];
  sync_threads();
  return r;
}

struct AddOp { template <typename T> DEVINLINE T operator()(T a, T b) const { return a + b; } };

// Row kernels (one block per row / channel) are launched with exactly BLOCK threads.
#define BLOCK 256

#include "bf16.cuh"
