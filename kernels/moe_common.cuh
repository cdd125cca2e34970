// Shared declarations of the MoE kernels. No CUDA headers: clang's NVPTX builtins stand in for them.
// Compile: clang-14 -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 -O3 -S -o kernels/ptx/<name>.ptx kernels/<name>.cu
#pragma once

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define MOE_DEV __device__ __attribute__((always_inline)) inline
#define MOE_KERNEL extern "C" __global__

#include "bf16.cuh"

#define MOE_FULL_MASK 0xffffffffu
#define MOE_INF __builtin_inff()
// Rows per partial sum of importance and load (IBackend.MoeKernelConstants.GatingRowsPerBlock).
#define MOE_ROWS_PER_BLOCK 8
// Threads per gating block: one warp per row.
#define MOE_GATING_THREADS (32 * MOE_ROWS_PER_BLOCK)
// Threads per block of moe_gating_reduce_f32 (a power of two; one block per importance/load column).
#define MOE_REDUCE_THREADS 256
// Largest top-(k+1) list kept in registers by the warp path (k ≤ 8).
#define MOE_MAX_TOP 9

MOE_DEV int moe_tid() { return __nvvm_read_ptx_sreg_tid_x(); }
MOE_DEV int moe_ntid() { return __nvvm_read_ptx_sreg_ntid_x(); }
MOE_DEV int moe_ctaid() { return __nvvm_read_ptx_sreg_ctaid_x(); }
MOE_DEV int moe_nctaid() { return __nvvm_read_ptx_sreg_nctaid_x(); }
MOE_DEV void moe_sync() { __syncthreads(); }

// Warp shuffles through inline PTX (clang-14 without a CUDA install does not enable the ptx60 builtins).
MOE_DEV int moe_shfl_xor_i(int v, int m) {
  int r;
  asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(r) : "r"(v), "r"(m));
  return r;
}
MOE_DEV int moe_shfl_i(int v, int lane) {
  int r;
  asm volatile("shfl.sync.idx.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(r) : "r"(v), "r"(lane));
  return r;
}
MOE_DEV float moe_shfl_xor(float v, int m) { return __builtin_bit_cast(float, moe_shfl_xor_i(__builtin_bit_cast(int, v), m)); }
MOE_DEV float moe_shfl(float v, int lane) { return __builtin_bit_cast(float, moe_shfl_i(__builtin_bit_cast(int, v), lane)); }

// exp/log on the approximate units (~2 ulp); enough for float32 parity with the double CPU reference.
MOE_DEV float moe_exp(float x) { return __nvvm_ex2_approx_f(x * 1.4426950408889634f); }
MOE_DEV float moe_log(float x) { return __nvvm_lg2_approx_f(x) * 0.6931471805599453f; }
MOE_DEV float moe_fabs(float x) { return __builtin_fabsf(x); }

// softplus(x) = max(x, 0) + log(1 + e^{−|x|}), stable for any x.
MOE_DEV float moe_softplus(float x) { return (x > 0.0f ? x : 0.0f) + moe_log(1.0f + moe_exp(-moe_fabs(x))); }
MOE_DEV float moe_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + moe_exp(-x));
  float e = moe_exp(x);
  return e / (1.0f + e);
}

// erfc(x) by the Chebyshev-fitted form t·exp(−x² + P(t)), t = 1/(1 + |x|/2): relative error < 1.2e-7 everywhere.
MOE_DEV float moe_erfc(float x) {
  float z = moe_fabs(x);
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f +
            t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
  float r = t * moe_exp(-z * z + p);
  return x >= 0.0f ? r : 2.0f - r;
}
// Φ(z) = erfc(−z/√2)/2 and φ(z).
MOE_DEV float moe_norm_cdf(float z) { return 0.5f * moe_erfc(-z * 0.70710678118654752f); }
MOE_DEV float moe_norm_pdf(float z) { return 0.39894228040143268f * moe_exp(-0.5f * z * z); }

// Candidate order of the top-k: larger value first, equal values → lower expert index.
MOE_DEV bool moe_better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }
