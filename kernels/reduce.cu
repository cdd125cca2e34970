// Reductions over one dim, fixed order (no atomics): results are bitwise reproducible run to run.
// The input is viewed as contiguous [outer, len, inner]; the output is [outer, inner].
//   <op>_<dtype>(i64 outer, i64 len, i64 inner, const T* x, T* y)   one thread per output, sequential over len
//   <op>_rows_<dtype>(i64 rows, i64 len, const T* x, T* y)          inner == 1: one block of BLOCK threads per row
//   <op>_chunks_<dtype>(i64 outer, i64 len, i64 inner, i64 chunk, const T* x, T* y)   y: [outer, ceil(len/chunk), inner],
//       one thread per (output, chunk): the first pass when few outputs share a long dim (the host then reduces y)
// ops: sum, max, min (NaN propagates), argmax/argmin (int64 index of the first extreme; a NaN counts as extreme).
// bf16 inputs (<op>_bf16...): read as bf16, accumulated in float32 and written as float32 (autocast keeps
// reductions in float32; a bf16 max/min is exact in float32), so a chunked first pass feeds the f32 second pass.
#include "common.cuh"

struct MaxOp { template <typename T> DEVINLINE T operator()(T a, T b) const { return a != a ? a : (b != b ? b : (a > b ? a : b)); } };
struct MinOp { template <typename T> DEVINLINE T operator()(T a, T b) const { return a != a ? a : (b != b ? b : (a < b ? a : b)); } };

// S: the stored input; T = acc_t<S>: accumulator and output.
template <typename S, typename Op, typename T = acc_t<S>>
DEVINLINE void reduce_dim(i64 outer, i64 len, i64 inner, const S* __restrict__ x, T* __restrict__ y, Op op) {
  GRID_LOOP(o, outer * inner) {
    i64 b = o / inner, i = o % inner;
    const S* p = x + b * len * inner + i;  // x: [outer, len, inner]
    T acc = ld(p[0]);
    for (i64 j = 1; j < len; ++j) acc = op(acc, ld(p[j * inner]));
    y[o] = acc;
  }
}

template <typename S, typename Op, typename T = acc_t<S>>
DEVINLINE void reduce_rows(i64 rows, i64 len, const S* __restrict__ x, T* __restrict__ y, T init, Op op, T* scratch) {
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const S* p = x + r * len;  // x: [rows, len]
    T acc = init;
    for (i64 j = tid_x(); j < len; j += BLOCK) acc = op(acc, ld(p[j]));
    acc = block_reduce(acc, scratch, op);
    if (tid_x() == 0) y[r] = acc;
  }
}

// Partial results over fixed chunks of the reduced dim: y[b, c, i] = op over x[b, c·chunk .. min(len, (c+1)·chunk), i].
// Gives a few outputs over a long dim thousands of threads instead of a handful of long serial chains.
template <typename S, typename Op, typename T = acc_t<S>>
DEVINLINE void reduce_chunks(i64 outer, i64 len, i64 inner, i64 chunk, const S* __restrict__ x, T* __restrict__ y, Op op) {
  i64 nch = (len + chunk - 1) / chunk;
  GRID_LOOP(o, outer * nch * inner) {
    i64 i = o % inner, bc = o / inner;
    i64 c = bc % nch, b = bc / nch;
    i64 j0 = c * chunk, j1 = j0 + chunk < len ? j0 + chunk : len;
    const S* p = x + b * len * inner + i;  // x: [outer, len, inner]
    T acc = ld(p[j0 * inner]);
    for (i64 j = j0 + 1; j < j1; ++j) acc = op(acc, ld(p[j * inner]));
    y[o] = acc;
  }
}

// Greater-than for argmax with NaN as the largest value; ties keep the earlier index.
template <typename T> DEVINLINE bool better_max(T a, T b) { return (a != a && b == b) || a > b; }
template <typename T> DEVINLINE bool better_min(T a, T b) { return (a != a && b == b) || a < b; }

template <typename S, bool IsMax, typename T = acc_t<S>>
DEVINLINE void arg_dim(i64 outer, i64 len, i64 inner, const S* __restrict__ x, i64* __restrict__ y) {
  GRID_LOOP(o, outer * inner) {
    i64 b = o / inner, i = o % inner;
    const S* p = x + b * len * inner + i;
    T best = ld(p[0]);
    i64 at = 0;
    for (i64 j = 1; j < len; ++j) {
      T v = ld(p[j * inner]);
      if (IsMax ? better_max(v, best) : better_min(v, best)) { best = v; at = j; }
    }
    y[o] = at;
  }
}

template <typename S, bool IsMax, typename T = acc_t<S>>
DEVINLINE void arg_rows(i64 rows, i64 len, const S* __restrict__ x, i64* __restrict__ y, T* sv, i64* si) {
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const S* p = x + r * len;
    int t = tid_x();
    T best = ld(p[0]);
    i64 at = 0;
    for (i64 j = t; j < len; j += BLOCK) {
      T v = ld(p[j]);
      if (IsMax ? better_max(v, best) : better_min(v, best)) { best = v; at = j; }
    }
    sv[t] = best; si[t] = at;
    sync_threads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
      if (t < s) {
        T v = sv[t + s]; i64 k = si[t + s];
        bool take = (IsMax ? better_max(v, sv[t]) : better_min(v, sv[t])) ||
                    (!(IsMax ? better_max(sv[t], v) : better_min(sv[t], v)) && k < si[t]);
        if (take) { sv[t] = v; si[t] = k; }
      }
      sync_threads();
    }
    if (t == 0) y[r] = si[0];
    sync_threads();
  }
}

// S: stored input; T: accumulator and output (T = S except bf16 → float).
#define REDUCE_KERNELS(S, T, sfx, NEG_INF, POS_INF)                                                              \
  KERNEL void sum_##sfx(i64 outer, i64 len, i64 inner, const S* x, T* y) { reduce_dim(outer, len, inner, x, y, AddOp()); } \
  KERNEL void max_##sfx(i64 outer, i64 len, i64 inner, const S* x, T* y) { reduce_dim(outer, len, inner, x, y, MaxOp()); } \
  KERNEL void min_##sfx(i64 outer, i64 len, i64 inner, const S* x, T* y) { reduce_dim(outer, len, inner, x, y, MinOp()); } \
  KERNEL void argmax_##sfx(i64 outer, i64 len, i64 inner, const S* x, i64* y) { arg_dim<S, true>(outer, len, inner, x, y); } \
  KERNEL void argmin_##sfx(i64 outer, i64 len, i64 inner, const S* x, i64* y) { arg_dim<S, false>(outer, len, inner, x, y); } \
  KERNEL void sum_chunks_##sfx(i64 outer, i64 len, i64 inner, i64 chunk, const S* x, T* y) {               \
    reduce_chunks(outer, len, inner, chunk, x, y, AddOp()); }                                                 \
  KERNEL void max_chunks_##sfx(i64 outer, i64 len, i64 inner, i64 chunk, const S* x, T* y) {               \
    reduce_chunks(outer, len, inner, chunk, x, y, MaxOp()); }                                                 \
  KERNEL void min_chunks_##sfx(i64 outer, i64 len, i64 inner, i64 chunk, const S* x, T* y) {               \
    reduce_chunks(outer, len, inner, chunk, x, y, MinOp()); }                                                 \
  KERNEL void sum_rows_##sfx(i64 rows, i64 len, const S* x, T* y) {                                          \
    __shared__ T s[BLOCK]; reduce_rows(rows, len, x, y, (T)0, AddOp(), s); }                                  \
  KERNEL void max_rows_##sfx(i64 rows, i64 len, const S* x, T* y) {                                          \
    __shared__ T s[BLOCK]; reduce_rows(rows, len, x, y, (T)(NEG_INF), MaxOp(), s); }                          \
  KERNEL void min_rows_##sfx(i64 rows, i64 len, const S* x, T* y) {                                          \
    __shared__ T s[BLOCK]; reduce_rows(rows, len, x, y, (T)(POS_INF), MinOp(), s); }                          \
  KERNEL void argmax_rows_##sfx(i64 rows, i64 len, const S* x, i64* y) {                                     \
    __shared__ T sv[BLOCK]; __shared__ i64 si[BLOCK]; arg_rows<S, true>(rows, len, x, y, sv, si); }           \
  KERNEL void argmin_rows_##sfx(i64 rows, i64 len, const S* x, i64* y) {                                     \
    __shared__ T sv[BLOCK]; __shared__ i64 si[BLOCK]; arg_rows<S, false>(rows, len, x, y, sv, si); }

REDUCE_KERNELS(float, float, f32, -__builtin_inff(), __builtin_inff())
REDUCE_KERNELS(double, double, f64, -__builtin_inf(), __builtin_inf())
REDUCE_KERNELS(bf16, float, bf16, -__builtin_inff(), __builtin_inff())
