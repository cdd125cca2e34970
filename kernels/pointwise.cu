// Strided pointwise kernels of the CUDA backend, for any layout (broadcast dims have stride 0).
// The output index i runs row-major over `shape`; operand q reads element offset(i, st[q]).
//   unary_<dtype>(i64 n, Strided3 s, int op, T alpha, T beta, const T* x, T* y)        op = UnaryOp ordinal; x by st[0]
//   binary_<dtype>(i64 n, Strided3 s, int op, const T* a, const T* b, T* y)             op = BinaryOp ordinal; a, b by st[0], st[1]
//   where_<dtype>(i64 n, Strided3 s, const T* c, const T* a, const T* b, T* y)          y = c != 0 ? a : b; st[0..2]
//   cast_<from>_<to>(i64 n, Strided3 s, const From* x, To* y)                          float → int truncates toward zero
//   copy_into_<i32|i64|bf16>(i64 n, Strided3 s, const U* x, U* y)   y[offset(i, st[1])] = x[offset(i, st[0])] (any 4/8/2-byte dtype)
//   fill_strided_<i32|i64|bf16>(i64 n, Strided3 s, P bits, U* y)     y[offset(i, st[0])] = bits (the value's bit pattern;
//       P = U, except bf16: an int holding the 16 bits)
//   relu_backward_<f32|bf16>(i64 n, const T* y, const T* dy, T* dx)  dense: dx = y > 0 ? dy : 0 (y: the ReLU output)
// bf16 (see common.cuh): unary/binary compute in float32 (alpha, beta are float) and round once on store; where and
// the moves copy bits; casts to bf16 round to nearest even (from f64/i32/i64 through float, as the C# side does).
// y is dense in `shape` except for copy_into/fill_strided. Strided3 (must match the C# side, 264 bytes):
// int ndim; int pad; i64 shape[8]; i64 st[3][8]. Float64 transcendental ops are refused by the host (no libdevice
// here); their double instantiations below go through float and are never launched.
#include "common.cuh"

#define PW_DIMS 8
struct Strided3 {
  int ndim;
  int pad;
  i64 shape[PW_DIMS];
  i64 st[3][PW_DIMS];
};

template <int Q>
DEVINLINE void offsets(const Strided3& s, i64 i, i64* o) {
  if (s.ndim == 1) {  // the common case after coalescing: no 64-bit division
#pragma unroll
    for (int q = 0; q < Q; q++) o[q] = i * s.st[q][0];
    return;
  }
#pragma unroll
  for (int q = 0; q < Q; q++) o[q] = 0;
  for (int d = s.ndim - 1; d >= 0; --d) {
    i64 sz = s.shape[d];
    i64 idx = i % sz;
    i /= sz;
#pragma unroll
    for (int q = 0; q < Q; q++) o[q] += idx * s.st[q][d];
  }
}

// erf: Taylor series near 0 (keeps relative accuracy), the erfc fit elsewhere (relative error < 1.2e-7).
DEVINLINE float erfc_f(float x) {
  float z = __builtin_fabsf(x);
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f +
            t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
  float r = t * exp_f(-z * z + p);
  return x >= 0.0f ? r : 2.0f - r;
}
DEVINLINE float erf_f(float x) {
  if (__builtin_fabsf(x) < 0.5f) {
    float x2 = x * x;
    return 1.1283791670955126f * x * (1.0f + x2 * (-1.0f / 3 + x2 * (1.0f / 10 + x2 * (-1.0f / 42 + x2 * (1.0f / 216 + x2 * (-1.0f / 1320))))));
  }
  return 1.0f - erfc_f(x);
}
DEVINLINE float softplus_f(float x) { return (x > 0.0f ? x : 0.0f) + log_f(1.0f + exp_f(-__builtin_fabsf(x))); }
DEVINLINE float pow_f(float x, float a) {
  if (a == 2.0f) return x * x;
  if (a == 1.0f) return x;
  if (a == 0.0f) return 1.0f;
  if (x != x || a != a) return __builtin_nanf("");
  if (x == 0.0f) return a > 0.0f ? 0.0f : __builtin_inff();
  float m = __nvvm_ex2_approx_f(a * __nvvm_lg2_approx_f(__builtin_fabsf(x)));
  if (x > 0.0f) return m;
  float fa = __builtin_floorf(a);
  if (fa != a) return __builtin_nanf("");
  float half = a * 0.5f;
  return __builtin_floorf(half) == half ? m : -m;  // negative base: sign by the integer exponent's parity
}

template <typename T> DEVINLINE bool is_nan(T v) { return v != v; }
template <typename T> DEVINLINE T max_t(T a, T b) { return is_nan(a) ? a : (is_nan(b) ? b : (a > b ? a : b)); }
template <typename T> DEVINLINE T min_t(T a, T b) { return is_nan(a) ? a : (is_nan(b) ? b : (a < b ? a : b)); }
DEVINLINE float sqrt_t(float x) { return sqrt_f(x); }
DEVINLINE double sqrt_t(double x) { return sqrt_d(x); }
DEVINLINE int sqrt_t(int x) { return (int)sqrt_d((double)x); }
DEVINLINE i64 sqrt_t(i64 x) { return (i64)sqrt_d((double)x); }

// UnaryOp: Neg, Abs, Sign, Exp, Log, Sqrt, Relu, Sigmoid, Tanh, Softplus, Erf, NormCdf, AddScalar, MulScalar,
// RDivScalar, PowScalar, Clamp, GtScalar, LtScalar, GeScalar, LeScalar, EqScalar, InRange.
template <typename T>
DEVINLINE T unary_apply(int op, T x, T a, T b) {
  float f = (float)x;
  switch (op) {
    case 0: return -x;
    case 1: return x < (T)0 ? -x : x;
    case 2: return x > (T)0 ? (T)1 : (x < (T)0 ? (T)-1 : (T)0);
    case 3: return (T)exp_f(f);
    case 4: return (T)log_f(f);
    case 5: return sqrt_t(x);
    case 6: return x > (T)0 ? x : (T)0;
    case 7: return (T)sigmoid_f(f);
    case 8: return (T)tanh_f(f);
    case 9: return (T)softplus_f(f);
    case 10: return (T)erf_f(f);
    case 11: return (T)(0.5f * erfc_f(-f * 0.70710678118654752f));
    case 12: return x + a;
    case 13: return x * a;
    case 14: return a / x;
    case 15: return a == (T)2 ? x * x : (a == (T)1 ? x : (T)pow_f(f, (float)a));
    case 16: return x < a ? a : (x > b ? b : x);
    case 17: return x > a ? (T)1 : (T)0;
    case 18: return x < a ? (T)1 : (T)0;
    case 19: return x >= a ? (T)1 : (T)0;
    case 20: return x <= a ? (T)1 : (T)0;
    case 21: return x == a ? (T)1 : (T)0;
    default: return (x >= a && x <= b) ? (T)1 : (T)0;
  }
}

// BinaryOp: Add, Sub, Mul, Div, Maximum, Minimum, Pow, Gt, Lt, Ge, Le, Eq, Ne.
template <typename T>
DEVINLINE T binary_apply(int op, T u, T v) {
  switch (op) {
    case 0: return u + v;
    case 1: return u - v;
    case 2: return u * v;
    case 3: return u / v;
    case 4: return max_t(u, v);
    case 5: return min_t(u, v);
    case 6: return (T)pow_f((float)u, (float)v);
    case 7: return u > v ? (T)1 : (T)0;
    case 8: return u < v ? (T)1 : (T)0;
    case 9: return u >= v ? (T)1 : (T)0;
    case 10: return u <= v ? (T)1 : (T)0;
    case 11: return u == v ? (T)1 : (T)0;
    default: return u != v ? (T)1 : (T)0;
  }
}

// S: the stored element; the ops run on acc_t<S> (float for bf16) and the result is stored with st<S>.
#define POINTWISE_KERNELS(S, sfx)                                                                                  \
  KERNEL void unary_##sfx(i64 n, Strided3 s, int op, acc_t<S> alpha, acc_t<S> beta, const S* __restrict__ x,       \
                          S* __restrict__ y) {                                                                     \
    GRID_LOOP(i, n) { i64 o[1]; offsets<1>(s, i, o); y[i] = st<S>(unary_apply<acc_t<S>>(op, ld(x[o[0]]), alpha, beta)); } \
  }                                                                                                                \
  KERNEL void binary_##sfx(i64 n, Strided3 s, int op, const S* __restrict__ a, const S* __restrict__ b, S* __restrict__ y) { \
    GRID_LOOP(i, n) { i64 o[2]; offsets<2>(s, i, o); y[i] = st<S>(binary_apply<acc_t<S>>(op, ld(a[o[0]]), ld(b[o[1]]))); } \
  }                                                                                                                \
  KERNEL void where_##sfx(i64 n, Strided3 s, const S* __restrict__ c, const S* __restrict__ a, const S* __restrict__ b, \
                          S* __restrict__ y) {                                                                     \
    GRID_LOOP(i, n) { i64 o[3]; offsets<3>(s, i, o); y[i] = ld(c[o[0]]) != (acc_t<S>)0 ? a[o[1]] : b[o[2]]; }     \
  }

POINTWISE_KERNELS(float, f32)
POINTWISE_KERNELS(double, f64)
POINTWISE_KERNELS(int, i32)
POINTWISE_KERNELS(i64, i64)
POINTWISE_KERNELS(bf16, bf16)

// From → To through To's compute type: (To)x for the built-in types; to bf16 via float and one rounding.
template <typename To, typename From> DEVINLINE To cvt(From x) { return st<To>((acc_t<To>)ld(x)); }

#define CAST(F, fs, T, ts)                                                                                          \
  KERNEL void cast_##fs##_##ts(i64 n, Strided3 s, const F* __restrict__ x, T* __restrict__ y) {                    \
    GRID_LOOP(i, n) { i64 o[1]; offsets<1>(s, i, o); y[i] = cvt<T>(x[o[0]]); }                                      \
  }
CAST(float, f32, double, f64) CAST(float, f32, int, i32) CAST(float, f32, i64, i64)
CAST(double, f64, float, f32) CAST(double, f64, int, i32) CAST(double, f64, i64, i64)
CAST(int, i32, float, f32) CAST(int, i32, double, f64) CAST(int, i32, i64, i64)
CAST(i64, i64, float, f32) CAST(i64, i64, double, f64) CAST(i64, i64, int, i32)
CAST(float, f32, bf16, bf16) CAST(double, f64, bf16, bf16) CAST(int, i32, bf16, bf16) CAST(i64, i64, bf16, bf16)
CAST(bf16, bf16, float, f32) CAST(bf16, bf16, double, f64) CAST(bf16, bf16, int, i32) CAST(bf16, bf16, i64, i64)

#define MOVE(U, P, sfx)                                                                                             \
  KERNEL void copy_into_##sfx(i64 n, Strided3 s, const U* __restrict__ x, U* __restrict__ y) {                     \
    GRID_LOOP(i, n) { i64 o[2]; offsets<2>(s, i, o); y[o[1]] = x[o[0]]; }                                           \
  }                                                                                                                \
  KERNEL void fill_strided_##sfx(i64 n, Strided3 s, P bits, U* __restrict__ y) {                                   \
    GRID_LOOP(i, n) { i64 o[1]; offsets<1>(s, i, o); y[o[0]] = (U)bits; }                                          \
  }
MOVE(int, int, i32)
MOVE(i64, i64, i64)
MOVE(unsigned short, int, bf16)

// ReLU backward from the ReLU's output: one pass instead of a mask and a multiply. y, dy, dx: dense [n].
template <typename S>
DEVINLINE void relu_backward(i64 n, const S* __restrict__ y, const S* __restrict__ dy, S* __restrict__ dx) {
  GRID_LOOP(i, n) dx[i] = ld(y[i]) > (acc_t<S>)0 ? dy[i] : st<S>((acc_t<S>)0);
}
KERNEL void relu_backward_f32(i64 n, const float* y, const float* dy, float* dx) { relu_backward(n, y, dy, dx); }
KERNEL void relu_backward_bf16(i64 n, const bf16* y, const bf16* dy, bf16* dx) { relu_backward(n, y, dy, dx); }
