// 2-d pooling over NCHW planes (planes = N·C), one thread per output element; the average-pool backward passes are
// owner-computes (each dx element sums its contributions in (oh, ow) order): no atomics, deterministic.
//   maxpool2d_<dtype>(i64 planes, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int ph, int pw,
//                     const T* x, T* y, i64* idx)        idx = h·W + w inside the plane; padding is −∞; first on ties; NaN wins
//   maxpool2d_backward_<dtype>(i64 planes, int H, int W, int Ho, int Wo, const T* dy, const i64* idx, T* dx)
//       one thread per plane (see below)
//   avgpool2d_<dtype>(planes, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, const T* x, T* y)     divisor kh·kw (count_include_pad)
//   avgpool2d_backward_<dtype>(planes, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, const T* dy, T* dx)
//   adaptive_avgpool2d_<dtype>(i64 planes, int H, int W, int Ho, int Wo, const T* x, T* y)  bins [⌊i·H/Ho⌋, ⌈(i+1)·H/Ho⌉)
//   adaptive_avgpool2d_backward_<dtype>(planes, H, W, Ho, Wo, const T* dy, T* dx)
//   maxpool2d_backward_owner_<f32|bf16>(planes, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, const T* dy, const i64* idx, T* dx)
//       owner-computes: one thread per dx element adds the dy of the covering windows whose saved index is this
//       element, in (oh, ow) order — the CPU's order of additions, with all of the GPU's threads (needs the geometry)
// All buffers dense: x, dx [planes, H, W]; y, dy, idx [planes, Ho, Wo].
// bf16 variants (<op>_bf16): windows are compared and summed in float32 and each output is rounded once; the
// per-plane max-pool backward is not instantiated for bf16 (it accumulates in the output buffer): use the owner form.
#include "common.cuh"

// Output rows/cols whose window covers input coordinate h: o·s − p ≤ h ≤ o·s − p + k − 1.
DEVINLINE void covering(int h, int k, int s, int p, int outSize, int& lo, int& hi) {
  int a = h + p - k + 1;
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = (h + p) / s;
  if (hi > outSize - 1) hi = outSize - 1;
}
DEVINLINE int bin_start(int i, int size, int out) { return (int)((i64)i * size / out); }
DEVINLINE int bin_end(int i, int size, int out) { return (int)(((i64)(i + 1) * size + out - 1) / out); }

// S: stored elements; T = acc_t<S>: comparisons and sums.
template <typename S, typename T = acc_t<S>>
DEVINLINE void maxpool(i64 planes, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int ph, int pw,
                       const S* __restrict__ x, S* __restrict__ y, i64* __restrict__ idx) {
  GRID_LOOP(e, planes * Ho * Wo) {
    int ow = (int)(e % Wo), oh = (int)((e / Wo) % Ho);
    const S* p = x + (e / ((i64)Ho * Wo)) * H * W;
    T best = (T)0; int at = -1;
    for (int r = 0; r < kh; r++) {
      int h = oh * sh - ph + r;
      if (h < 0 || h >= H) continue;
      for (int c = 0; c < kw; c++) {
        int w = ow * sw - pw + c;
        if (w < 0 || w >= W) continue;
        T v = ld(p[h * W + w]);
        if (at < 0 || v > best || (v != v && best == best)) { best = v; at = h * W + w; }
      }
    }
    y[e] = st<S>(at < 0 ? -(T)__builtin_inf() : best);
    idx[e] = at < 0 ? 0 : at;
  }
}

// One thread per plane, outputs in row-major order: exactly the CPU's order of additions, and no atomics even
// where windows overlap (stride < kernel). The seam gives only dy and the saved indices, no window geometry.
template <typename T>
DEVINLINE void maxpool_backward(i64 planes, int H, int W, int Ho, int Wo, const T* __restrict__ dy,
                                const i64* __restrict__ idx, T* __restrict__ dx) {
  GRID_LOOP(pl, planes) {
    T* d = dx + pl * H * W;
    for (int e = 0; e < H * W; e++) d[e] = (T)0;
    const T* g = dy + pl * Ho * Wo;
    const i64* ix = idx + pl * Ho * Wo;
    for (int o = 0; o < Ho * Wo; o++) {
      i64 at = ix[o];
      if (at >= 0 && at < (i64)H * W) d[at] += g[o];
    }
  }
}

// Owner-computes max-pool backward: dx element (h, w) sums dy[o] over the windows o covering it (row-major o order)
// whose saved index is h·W + w.
template <typename S, typename T = acc_t<S>>
DEVINLINE void maxpool_backward_owner(i64 planes, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int ph, int pw,
                                      const S* __restrict__ dy, const i64* __restrict__ idx, S* __restrict__ dx) {
  GRID_LOOP(e, planes * H * W) {
    int w = (int)(e % W), h = (int)((e / W) % H);
    i64 base = (e / ((i64)H * W)) * Ho * Wo;
    i64 me = (i64)h * W + w;
    int oh0, oh1, ow0, ow1;
    covering(h, kh, sh, ph, Ho, oh0, oh1);
    covering(w, kw, sw, pw, Wo, ow0, ow1);
    T acc = (T)0;
    for (int oh = oh0; oh <= oh1; oh++)
      for (int ow = ow0; ow <= ow1; ow++) {
        i64 o = base + oh * Wo + ow;
        if (idx[o] == me) acc += ld(dy[o]);
      }
    dx[e] = st<S>(acc);
  }
}

template <typename S, typename T = acc_t<S>>
DEVINLINE void avgpool(i64 planes, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int ph, int pw,
                       const S* __restrict__ x, S* __restrict__ y) {
  T inv = (T)1 / (T)(kh * kw);
  GRID_LOOP(e, planes * Ho * Wo) {
    int ow = (int)(e % Wo), oh = (int)((e / Wo) % Ho);
    const S* p = x + (e / ((i64)Ho * Wo)) * H * W;
    T s = (T)0;
    for (int r = 0; r < kh; r++) {
      int h = oh * sh - ph + r;
      if (h < 0 || h >= H) continue;
      for (int c = 0; c < kw; c++) {
        int w = ow * sw - pw + c;
        if (w >= 0 && w < W) s += ld(p[h * W + w]);
      }
    }
    y[e] = st<S>(s * inv);
  }
}

template <typename S, typename T = acc_t<S>>
DEVINLINE void avgpool_backward(i64 planes, int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int ph, int pw,
                                const S* __restrict__ dy, S* __restrict__ dx) {
  T inv = (T)1 / (T)(kh * kw);
  GRID_LOOP(e, planes * H * W) {
    int w = (int)(e % W), h = (int)((e / W) % H);
    const S* g = dy + (e / ((i64)H * W)) * Ho * Wo;
    int oh0, oh1, ow0, ow1;
    covering(h, kh, sh, ph, Ho, oh0, oh1);
    covering(w, kw, sw, pw, Wo, ow0, ow1);
    T acc = (T)0;
    for (int oh = oh0; oh <= oh1; oh++)
      for (int ow = ow0; ow <= ow1; ow++) acc += ld(g[oh * Wo + ow]);
    dx[e] = st<S>(acc * inv);
  }
}

template <typename S, typename T = acc_t<S>>
DEVINLINE void adaptive(i64 planes, int H, int W, int Ho, int Wo, const S* __restrict__ x, S* __restrict__ y) {
  GRID_LOOP(e, planes * Ho * Wo) {
    int ow = (int)(e % Wo), oh = (int)((e / Wo) % Ho);
    const S* p = x + (e / ((i64)Ho * Wo)) * H * W;
    int h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho), w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
    T s = (T)0;
    for (int h = h0; h < h1; h++)
      for (int w = w0; w < w1; w++) s += ld(p[h * W + w]);
    y[e] = st<S>(s / (T)((h1 - h0) * (w1 - w0)));
  }
}

template <typename S, typename T = acc_t<S>>
DEVINLINE void adaptive_backward(i64 planes, int H, int W, int Ho, int Wo, const S* __restrict__ dy, S* __restrict__ dx) {
  GRID_LOOP(e, planes * H * W) {
    int w = (int)(e % W), h = (int)((e / W) % H);
    const S* g = dy + (e / ((i64)H * W)) * Ho * Wo;
    T acc = (T)0;
    // Bins are monotone in i, so scan the few bins that can contain h (and w).
    for (int oh = 0; oh < Ho; oh++) {
      int h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho);
      if (h < h0 || h >= h1) continue;
      for (int ow = 0; ow < Wo; ow++) {
        int w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
        if (w < w0 || w >= w1) continue;
        acc += ld(g[oh * Wo + ow]) / (T)((h1 - h0) * (w1 - w0));
      }
    }
    dx[e] = st<S>(acc);
  }
}

#define GEOM int H, int W, int Ho, int Wo, int kh, int kw, int sh, int sw, int ph, int pw
#define GARGS H, W, Ho, Wo, kh, kw, sh, sw, ph, pw
#define POOL_KERNELS(T, sfx)                                                                                        \
  KERNEL void maxpool2d_##sfx(i64 planes, GEOM, const T* x, T* y, i64* idx) { maxpool(planes, GARGS, x, y, idx); } \
  KERNEL void avgpool2d_##sfx(i64 planes, GEOM, const T* x, T* y) { avgpool(planes, GARGS, x, y); }                \
  KERNEL void avgpool2d_backward_##sfx(i64 planes, GEOM, const T* dy, T* dx) { avgpool_backward(planes, GARGS, dy, dx); } \
  KERNEL void adaptive_avgpool2d_##sfx(i64 planes, int H, int W, int Ho, int Wo, const T* x, T* y) {               \
    adaptive(planes, H, W, Ho, Wo, x, y); }                                                                         \
  KERNEL void adaptive_avgpool2d_backward_##sfx(i64 planes, int H, int W, int Ho, int Wo, const T* dy, T* dx) {     \
    adaptive_backward(planes, H, W, Ho, Wo, dy, dx); }

#define MAXPOOL_PLANE_BACKWARD(T, sfx)                                                                              \
  KERNEL void maxpool2d_backward_##sfx(i64 planes, int H, int W, int Ho, int Wo, const T* dy, const i64* idx, T* dx) { \
    maxpool_backward(planes, H, W, Ho, Wo, dy, idx, dx); }
#define MAXPOOL_OWNER_BACKWARD(S, sfx)                                                                              \
  KERNEL void maxpool2d_backward_owner_##sfx(i64 planes, GEOM, const S* dy, const i64* idx, S* dx) {               \
    maxpool_backward_owner(planes, GARGS, dy, idx, dx); }

POOL_KERNELS(float, f32)
POOL_KERNELS(double, f64)
POOL_KERNELS(bf16, bf16)
MAXPOOL_PLANE_BACKWARD(float, f32)
MAXPOOL_PLANE_BACKWARD(double, f64)
MAXPOOL_OWNER_BACKWARD(float, f32)
MAXPOOL_OWNER_BACKWARD(bf16, bf16)
