// bfloat16 storage for the kernels (included by common.cuh and moe_common.cuh). No CUDA headers.
#pragma once

// Needs __device__ defined first (both including headers do).
#define BF16_DEV __device__ __attribute__((always_inline)) inline

// A bf16 element is the upper half of a float32. Kernels load it into float32 (exact), compute in float32 and
// round once on store, to nearest even by the same integer formula as the C# BFloat16.FromFloat: NaN stays NaN
// (quiet bit set, sign and upper payload kept), overflow rounds to ±Inf, subnormals round like any value. Both
// sides therefore store the same bits for the same float32 result (cvt.rn.bf16.f32 would canonicalise NaNs).
struct bf16 { unsigned short bits; };
BF16_DEV float bf16_to_f32(unsigned short b) { return __builtin_bit_cast(float, (unsigned)b << 16); }
BF16_DEV unsigned short bf16_from_f32(float f) {
  unsigned u = __builtin_bit_cast(unsigned, f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// acc_t<S>: the type a stored element S is computed in (bf16 → float; every other type is its own).
template <typename S> struct AccOf { typedef S T; };
template <> struct AccOf<bf16> { typedef float T; };
template <typename S> using acc_t = typename AccOf<S>::T;

// ld: stored element → compute value; st<S>: compute value → stored element (identity except for bf16).
BF16_DEV float ld(float v) { return v; }
BF16_DEV double ld(double v) { return v; }
BF16_DEV int ld(int v) { return v; }
BF16_DEV long long ld(long long v) { return v; }
BF16_DEV float ld(bf16 v) { return bf16_to_f32(v.bits); }
template <typename S> BF16_DEV S st(acc_t<S> v) { return v; }
template <> BF16_DEV bf16 st<bf16>(float v) { bf16 r; r.bits = bf16_from_f32(v); return r; }
