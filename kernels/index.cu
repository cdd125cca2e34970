// Indexing kernels (int64 indices). Shapes use the [outer, len, inner] view around the indexed dim.
//   index_select_f32(outer, srcLen, nIdx, inner, const float* x, const i64* idx, float* y)
//       x: [outer, srcLen, inner], idx: [nIdx], y: [outer, nIdx, inner];  y[o, j, i] = x[o, idx[j], i]
//   index_add_f32(outer, dstLen, nIdx, inner, const float* dy, const i64* idx, float* dx)   (index_select backward)
//       dx: [outer, dstLen, inner] (overwritten), dx[o, k, i] = Σ_{j: idx[j] == k} dy[o, j, i]
//   gather_f32(outer, srcLen, idxLen, inner, const float* x, const i64* idx, float* y)
//       idx, y: [outer, idxLen, inner];  y[o, j, i] = x[o, idx[o, j, i], i]
//   scatter_add_f32(outer, dstLen, idxLen, inner, const float* dy, const i64* idx, float* dx)   (gather backward)
//       dx[o, k, i] = Σ_{j: idx[o, j, i] == k} dy[o, j, i]
//   topk_f32(rows, cols, k, const float* x, float* values, i64* indices)   values, indices: [rows, k], descending
// The adds are owner-computes (each output element sums its matches in index order): no float atomics, so
// results are deterministic; cost is O(outputs · index length), fine for label/embedding-sized indices.
// Out-of-range indices read as 0 (select/gather) or never match (adds); the host validates them.
#include "common.cuh"

template <typename T>
DEVINLINE void index_select(i64 outer, i64 srcLen, i64 nIdx, i64 inner, const T* __restrict__ x,
                            const i64* __restrict__ idx, T* __restrict__ y) {
  GRID_LOOP(e, outer * nIdx * inner) {
    i64 i = e % inner, j = (e / inner) % nIdx, o = e / (inner * nIdx);
    i64 k = idx[j];
    y[e] = (k >= 0 && k < srcLen) ? x[(o * srcLen + k) * inner + i] : (T)0;
  }
}

template <typename T>
DEVINLINE void index_add(i64 outer, i64 dstLen, i64 nIdx, i64 inner, const T* __restrict__ dy,
                         const i64* __restrict__ idx, T* __restrict__ dx) {
  GRID_LOOP(e, outer * dstLen * inner) {
    i64 i = e % inner, k = (e / inner) % dstLen, o = e / (inner * dstLen);
    T acc = (T)0;
    for (i64 j = 0; j < nIdx; ++j)
      if (idx[j] == k) acc += dy[(o * nIdx + j) * inner + i];
    dx[e] = acc;
  }
}

template <typename T>
DEVINLINE void gather(i64 outer, i64 srcLen, i64 idxLen, i64 inner, const T* __restrict__ x,
                      const i64* __restrict__ idx, T* __restrict__ y) {
  GRID_LOOP(e, outer * idxLen * inner) {
    i64 i = e % inner, o = e / (inner * idxLen);
    i64 k = idx[e];
    y[e] = (k >= 0 && k < srcLen) ? x[(o * srcLen + k) * inner + i] : (T)0;
  }
}

template <typename T>
DEVINLINE void scatter_add(i64 outer, i64 dstLen, i64 idxLen, i64 inner, const T* __restrict__ dy,
                           const i64* __restrict__ idx, T* __restrict__ dx) {
  GRID_LOOP(e, outer * dstLen * inner) {
    i64 i = e % inner, k = (e / inner) % dstLen, o = e / (inner * dstLen);
    T acc = (T)0;
    for (i64 j = 0; j < idxLen; ++j) {
      i64 at = (o * idxLen + j) * inner + i;
      if (idx[at] == k) acc += dy[at];
    }
    dx[e] = acc;
  }
}

// k selection passes, one thread per row: pass p finds the largest element ranked below pass p−1's pick
// (order: value descending, then index ascending; NaN ranks highest). O(k·cols), no local arrays, no spills.
template <typename T>
DEVINLINE bool ranks_before(T a, i64 ia, T b, i64 ib) {
  bool an = a != a, bn = b != b;
  if (an != bn) return an;
  if (!an && a != b) return a > b;
  return ia < ib;
}

template <typename T>
DEVINLINE void topk(i64 rows, i64 cols, i64 k, const T* __restrict__ x, T* __restrict__ values, i64* __restrict__ indices) {
  GRID_LOOP(r, rows) {
    const T* p = x + r * cols;
    T prev = (T)0; i64 prevAt = -1;
    for (i64 q = 0; q < k; ++q) {
      T best = (T)0; i64 at = -1;
      for (i64 j = 0; j < cols; ++j) {
        T v = p[j];
        if (prevAt >= 0 && !ranks_before(prev, prevAt, v, j)) continue;  // already taken
        if (at < 0 || ranks_before(v, j, best, at)) { best = v; at = j; }
      }
      values[r * k + q] = best;
      indices[r * k + q] = at;
      prev = best; prevAt = at;
    }
  }
}

#define INDEX_KERNELS(T, sfx)                                                                                     \
  KERNEL void index_select_##sfx(i64 outer, i64 srcLen, i64 nIdx, i64 inner, const T* x, const i64* idx, T* y) {  \
    index_select(outer, srcLen, nIdx, inner, x, idx, y); }                                                        \
  KERNEL void index_add_##sfx(i64 outer, i64 dstLen, i64 nIdx, i64 inner, const T* dy, const i64* idx, T* dx) {   \
    index_add(outer, dstLen, nIdx, inner, dy, idx, dx); }                                                         \
  KERNEL void gather_##sfx(i64 outer, i64 srcLen, i64 idxLen, i64 inner, const T* x, const i64* idx, T* y) {      \
    gather(outer, srcLen, idxLen, inner, x, idx, y); }                                                            \
  KERNEL void scatter_add_##sfx(i64 outer, i64 dstLen, i64 idxLen, i64 inner, const T* dy, const i64* idx, T* dx) { \
    scatter_add(outer, dstLen, idxLen, inner, dy, idx, dx); }                                                     \
  KERNEL void topk_##sfx(i64 rows, i64 cols, i64 k, const T* x, T* values, i64* indices) {                        \
    topk(rows, cols, k, x, values, indices); }

INDEX_KERNELS(float, f32)
INDEX_KERNELS(double, f64)
