// Memory-format changes at the edges of the autocast / channels-last regions: dense casts between float32 and
// bf16, and NCHW ↔ NHWC (channels-last) transposes, optionally fused with the cast.
//   cast_dense_f32_bf16(i64 n, const float* x, bf16* y)      y[i] = round-to-nearest-even(x[i])   (common.cuh/bf16.cuh)
//   cast_dense_bf16_f32(i64 n, const bf16* x, float* y)      y[i] = x[i] (exact)
//       8 elements per thread per step through 16-byte vector loads/stores; x and y must be 16-byte aligned (the
//       caching allocator's blocks are; a view at an odd offset takes pointwise.cu's strided cast_<from>_<to>).
//   nchw_to_nhwc_<f32|bf16>(i64 N, i64 C, i64 HW, const T* x, T* y)     x: [N, C, HW] → y: [N, HW, C] (bits copied)
//   nhwc_to_nchw_<f32|bf16>(i64 N, i64 C, i64 HW, const T* x, T* y)     x: [N, HW, C] → y: [N, C, HW]
//   nchw_to_nhwc_f32_bf16(N, C, HW, const float* x, bf16* y)            transpose and round (the input edge)
//   nhwc_to_nchw_bf16_f32(N, C, HW, const bf16* x, float* y)            transpose and widen (the output edge)
// Transposes: 32×32 tiles through shared memory (reads and writes both coalesced), TILE_THREADS threads per block,
// any grid (blocks stride over the N·⌈R/32⌉·⌈K/32⌉ tiles). Traffic: one read and one write of every element.
#include "common.cuh"

#define TILE 32
#define TILE_THREADS 256   // 32 × 8: each thread moves TILE / 8 = 4 elements of a tile

typedef float f32x4 __attribute__((ext_vector_type(4)));
typedef unsigned u32x4 __attribute__((ext_vector_type(4)));

// Two bf16 values packed into one 32-bit word (element 0 in the low half: little-endian memory order).
DEVINLINE unsigned pack2(float a, float b) { return (unsigned)bf16_from_f32(a) | ((unsigned)bf16_from_f32(b) << 16); }

KERNEL void cast_dense_f32_bf16(i64 n, const float* __restrict__ x, bf16* __restrict__ y) {
  i64 groups = n / 8;
  const f32x4* xv = (const f32x4*)x;
  u32x4* yv = (u32x4*)y;
  GRID_LOOP(g, groups) {
    f32x4 a = xv[2 * g], b = xv[2 * g + 1];
    u32x4 o;
    o.x = pack2(a.x, a.y); o.y = pack2(a.z, a.w); o.z = pack2(b.x, b.y); o.w = pack2(b.z, b.w);
    yv[g] = o;
  }
  GRID_LOOP(t, n - groups * 8) { i64 i = groups * 8 + t; y[i] = st<bf16>(x[i]); }
}

KERNEL void cast_dense_bf16_f32(i64 n, const bf16* __restrict__ x, float* __restrict__ y) {
  i64 groups = n / 8;
  const u32x4* xv = (const u32x4*)x;
  f32x4* yv = (f32x4*)y;
  GRID_LOOP(g, groups) {
    u32x4 v = xv[g];
    f32x4 a, b;
    a.x = bf16_to_f32((unsigned short)v.x); a.y = bf16_to_f32((unsigned short)(v.x >> 16));
    a.z = bf16_to_f32((unsigned short)v.y); a.w = bf16_to_f32((unsigned short)(v.y >> 16));
    b.x = bf16_to_f32((unsigned short)v.z); b.y = bf16_to_f32((unsigned short)(v.z >> 16));
    b.z = bf16_to_f32((unsigned short)v.w); b.w = bf16_to_f32((unsigned short)(v.w >> 16));
    yv[2 * g] = a; yv[2 * g + 1] = b;
  }
  GRID_LOOP(t, n - groups * 8) { i64 i = groups * 8 + t; y[i] = ld(x[i]); }
}

// From → To for a transpose: the same type copies bits (a bf16 NaN keeps its payload); otherwise through To's compute type.
template <typename To, typename From> struct Conv { static DEVINLINE To f(From v) { return st<To>((acc_t<To>)ld(v)); } };
template <typename T> struct Conv<T, T> { static DEVINLINE T f(T v) { return v; } };

// y[n, j, i] = x[n, i, j] for x: [N, R, K], y: [N, K, R]. The tile is kept in the input's storage type.
template <typename In, typename Out>
DEVINLINE void batched_transpose(i64 N, i64 R, i64 K, const In* __restrict__ x, Out* __restrict__ y, In (*tile)[TILE + 1]) {
  int tx = tid_x() & (TILE - 1), ty = tid_x() / TILE;
  i64 tr = (R + TILE - 1) / TILE, tk = (K + TILE - 1) / TILE;
  for (i64 t = ctaid_x(); t < N * tr * tk; t += nctaid_x()) {   // block-uniform
    i64 n = t / (tr * tk), rem = t - n * tr * tk;
    i64 r0 = (rem / tk) * TILE, k0 = (rem % tk) * TILE;
    const In* xs = x + n * R * K;
    Out* ys = y + n * R * K;
    for (int j = ty; j < TILE; j += TILE_THREADS / TILE) {   // read rows r0 + j along k: coalesced
      i64 r = r0 + j, k = k0 + tx;
      if (r < R && k < K) tile[j][tx] = xs[r * K + k];
    }
    sync_threads();
    for (int j = ty; j < TILE; j += TILE_THREADS / TILE) {   // write rows k0 + j along r: coalesced
      i64 k = k0 + j, r = r0 + tx;
      if (r < R && k < K) ys[k * R + r] = Conv<Out, In>::f(tile[tx][j]);
    }
    sync_threads();
  }
}

#define TRANSPOSE_KERNELS(In, Out, sfx)                                                                             \
  KERNEL void nchw_to_nhwc_##sfx(i64 N, i64 C, i64 HW, const In* __restrict__ x, Out* __restrict__ y) {              \
    __shared__ In tile[TILE][TILE + 1]; batched_transpose(N, C, HW, x, y, tile); }                                  \
  KERNEL void nhwc_to_nchw_##sfx(i64 N, i64 C, i64 HW, const In* __restrict__ x, Out* __restrict__ y) {              \
    __shared__ In tile[TILE][TILE + 1]; batched_transpose(N, HW, C, x, y, tile); }

TRANSPOSE_KERNELS(float, float, f32)
TRANSPOSE_KERNELS(bf16, bf16, bf16)

KERNEL void nchw_to_nhwc_f32_bf16(i64 N, i64 C, i64 HW, const float* __restrict__ x, bf16* __restrict__ y) {
  __shared__ float tile[TILE][TILE + 1];
  batched_transpose(N, C, HW, x, y, tile);
}

KERNEL void nhwc_to_nchw_bf16_f32(i64 N, i64 C, i64 HW, const bf16* __restrict__ x, float* __restrict__ y) {
  __shared__ bf16 tile[TILE][TILE + 1];
  batched_transpose(N, HW, C, x, y, tile);
}
