// Elementwise kernels: unary maps and broadcasting binary ops, <op>_<dtype>.
//   Contiguous fast path:  <op>_<dtype>(i64 n, const T* x, T* y)            / (i64 n, const T* a, const T* b, T* y)
//   Strided/broadcast:     <op>_<dtype>_strided(i64 n, StridedArgs s, const T* a, const T* b, T* y)
// StridedArgs is passed by value; layout (must match the C# side): int ndim; int pad; i64 shape[8]; i64 sa[8];
// i64 sb[8] — 200 bytes. Output is contiguous in `shape`; sa/sb are element strides of a/b (0 on broadcast dims).
#include "common.cuh"

#define MAX_DIMS 8
struct StridedArgs {
  int ndim;
  int pad;
  i64 shape[MAX_DIMS];
  i64 sa[MAX_DIMS];
  i64 sb[MAX_DIMS];
};

// Offsets of output element i in a and b (row-major over shape, innermost last).
DEVINLINE void strided_offsets(const StridedArgs& s, i64 i, i64& oa, i64& ob) {
  oa = 0; ob = 0;
  for (int d = s.ndim - 1; d >= 0; --d) {
    i64 sz = s.shape[d];
    i64 idx = i % sz;
    i /= sz;
    oa += idx * s.sa[d];
    ob += idx * s.sb[d];
  }
}

#define UNARY(name, T, expr)                                               \
  KERNEL void name(i64 n, const T* __restrict__ x, T* __restrict__ y) {    \
    GRID_LOOP(i, n) { T v = x[i]; y[i] = (expr); }                         \
  }

UNARY(neg_f32, float, -v)
UNARY(abs_f32, float, __builtin_fabsf(v))
UNARY(exp_f32, float, exp_f(v))
UNARY(log_f32, float, log_f(v))
UNARY(sqrt_f32, float, sqrt_f(v))
UNARY(relu_f32, float, v > 0.0f ? v : 0.0f)
UNARY(sigmoid_f32, float, sigmoid_f(v))
UNARY(tanh_f32, float, tanh_f(v))
UNARY(neg_f64, double, -v)
UNARY(abs_f64, double, __builtin_fabs(v))
UNARY(sqrt_f64, double, sqrt_d(v))
UNARY(relu_f64, double, v > 0.0 ? v : 0.0)

// y = x·scale + shift (affine scalar op covering AddScalar/MulScalar/RSubScalar).
KERNEL void affine_f32(i64 n, const float* __restrict__ x, float scale, float shift, float* __restrict__ y) {
  GRID_LOOP(i, n) y[i] = x[i] * scale + shift;
}
KERNEL void affine_f64(i64 n, const double* __restrict__ x, double scale, double shift, double* __restrict__ y) {
  GRID_LOOP(i, n) y[i] = x[i] * scale + shift;
}
// dx = dy · (x > 0)
KERNEL void relu_backward_f32(i64 n, const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dx) {
  GRID_LOOP(i, n) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}
KERNEL void fill_f32(i64 n, float v, float* __restrict__ y) { GRID_LOOP(i, n) y[i] = v; }
KERNEL void fill_f64(i64 n, double v, double* __restrict__ y) { GRID_LOOP(i, n) y[i] = v; }

#define BINARY(name, T, expr)                                                                  \
  KERNEL void name(i64 n, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ y) { \
    GRID_LOOP(i, n) { T u = a[i]; T v = b[i]; y[i] = (expr); }                                  \
  }                                                                                            \
  KERNEL void name##_strided(i64 n, StridedArgs s, const T* __restrict__ a, const T* __restrict__ b, \
                             T* __restrict__ y) {                                              \
    GRID_LOOP(i, n) {                                                                          \
      i64 oa, ob;                                                                              \
      strided_offsets(s, i, oa, ob);                                                           \
      T u = a[oa]; T v = b[ob]; y[i] = (expr);                                                 \
    }                                                                                          \
  }

BINARY(add_f32, float, u + v)
BINARY(sub_f32, float, u - v)
BINARY(mul_f32, float, u * v)
BINARY(div_f32, float, u / v)
BINARY(maximum_f32, float, max_f(u, v))
BINARY(minimum_f32, float, min_f(u, v))
BINARY(add_f64, double, u + v)
BINARY(sub_f64, double, u - v)
BINARY(mul_f64, double, u * v)
BINARY(div_f64, double, u / v)
BINARY(maximum_f64, double, max_d(u, v))
BINARY(minimum_f64, double, min_d(u, v))

// Densify a strided view: y[i] = x[offset(i)] (uses s.sa; s.sb ignored). Makes any view contiguous.
KERNEL void copy_strided_f32(i64 n, StridedArgs s, const float* __restrict__ x, float* __restrict__ y) {
  GRID_LOOP(i, n) { i64 oa, ob; strided_offsets(s, i, oa, ob); y[i] = x[oa]; }
}
KERNEL void copy_strided_f64(i64 n, StridedArgs s, const double* __restrict__ x, double* __restrict__ y) {
  GRID_LOOP(i, n) { i64 oa, ob; strided_offsets(s, i, oa, ob); y[i] = x[oa]; }
}
