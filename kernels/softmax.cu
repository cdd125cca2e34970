// Softmax family over the last dim, one block of BLOCK threads per row, fixed-order reductions.
//   softmax_f32 / log_softmax_f32(i64 rows, i64 cols, const float* x, float* y)          x, y: [rows, cols]
//   softmax_backward_f32(rows, cols, const float* y, const float* dy, float* dx)          dx = y·(dy − Σ dy·y)
//   log_softmax_backward_f32(rows, cols, const float* y, const float* dy, float* dx)      dx = dy − e^y·Σ dy
//   cross_entropy_forward_f32(rows, cols, const float* logits, const i64* target, float* loss)
//       loss: [rows], loss[r] = logsumexp(logits[r]) − logits[r, target[r]]  (the mean is a separate reduction)
//   cross_entropy_backward_f32(rows, cols, const float* logits, const i64* target, const float* dloss, float scale, float* dx)
//       dx[r, c] = (softmax(logits[r])[c] − [c == target[r]]) · dloss[0] · scale   (scale = 1/rows for a mean)
// bf16 variants (<op>_bf16): rows are read as bf16 and every max, exp and sum runs in float32; softmax outputs
// and gradients are stored as bf16 (rounded once), the cross-entropy loss and its upstream gradient stay float32.
#include "common.cuh"

struct MaxF { DEVINLINE float operator()(float a, float b) const { return max_f(a, b); } };

// Row max and Σ exp(x − max) for row p of length n (both reduced across the block).
template <typename S>
DEVINLINE void row_stats(const S* p, i64 n, float* scratch, float& mx, float& sum) {
  float m = -__builtin_inff();
  for (i64 j = tid_x(); j < n; j += BLOCK) m = max_f(m, ld(p[j]));
  mx = block_reduce(m, scratch, MaxF());
  float s = 0.0f;
  for (i64 j = tid_x(); j < n; j += BLOCK) s += exp_f(ld(p[j]) - mx);
  sum = block_reduce(s, scratch, AddOp());
}

template <typename S>
DEVINLINE void softmax_rows(i64 rows, i64 cols, const S* __restrict__ x, S* __restrict__ y, float* s) {
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const S* p = x + r * cols;
    float mx, sum;
    row_stats(p, cols, s, mx, sum);
    float inv = 1.0f / sum;
    for (i64 j = tid_x(); j < cols; j += BLOCK) y[r * cols + j] = st<S>(exp_f(ld(p[j]) - mx) * inv);
  }
}

template <typename S>
DEVINLINE void log_softmax_rows(i64 rows, i64 cols, const S* __restrict__ x, S* __restrict__ y, float* s) {
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const S* p = x + r * cols;
    float mx, sum;
    row_stats(p, cols, s, mx, sum);
    float lse = mx + log_f(sum);
    for (i64 j = tid_x(); j < cols; j += BLOCK) y[r * cols + j] = st<S>(ld(p[j]) - lse);
  }
}

template <typename S>
DEVINLINE void softmax_backward_rows(i64 rows, i64 cols, const S* __restrict__ y, const S* __restrict__ dy, S* __restrict__ dx,
                                     float* s) {
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const S* py = y + r * cols;
    const S* pd = dy + r * cols;
    float acc = 0.0f;
    for (i64 j = tid_x(); j < cols; j += BLOCK) acc += ld(py[j]) * ld(pd[j]);
    float dot = block_reduce(acc, s, AddOp());
    for (i64 j = tid_x(); j < cols; j += BLOCK) dx[r * cols + j] = st<S>(ld(py[j]) * (ld(pd[j]) - dot));
  }
}

template <typename S>
DEVINLINE void log_softmax_backward_rows(i64 rows, i64 cols, const S* __restrict__ y, const S* __restrict__ dy,
                                         S* __restrict__ dx, float* s) {
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const S* py = y + r * cols;
    const S* pd = dy + r * cols;
    float acc = 0.0f;
    for (i64 j = tid_x(); j < cols; j += BLOCK) acc += ld(pd[j]);
    float total = block_reduce(acc, s, AddOp());
    for (i64 j = tid_x(); j < cols; j += BLOCK) dx[r * cols + j] = st<S>(ld(pd[j]) - exp_f(ld(py[j])) * total);
  }
}

// loss: [rows] float32 whatever the logits' storage.
template <typename S>
DEVINLINE void cross_entropy_forward_rows(i64 rows, i64 cols, const S* __restrict__ logits, const i64* __restrict__ target,
                                          float* __restrict__ loss, float* s) {
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const S* p = logits + r * cols;
    float mx, sum;
    row_stats(p, cols, s, mx, sum);
    if (tid_x() == 0) {
      i64 t = target[r];
      // An out-of-range target yields NaN rather than reading out of bounds; the host validates targets.
      loss[r] = (t >= 0 && t < cols) ? mx + log_f(sum) - ld(p[t]) : __builtin_nanf("");
    }
  }
}

// dloss: [1] float32; dx: [rows, cols] in the logits' storage.
template <typename S>
DEVINLINE void cross_entropy_backward_rows(i64 rows, i64 cols, const S* __restrict__ logits, const i64* __restrict__ target,
                                           const float* __restrict__ dloss, float scale, S* __restrict__ dx, float* s) {
  float g = dloss[0] * scale;
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const S* p = logits + r * cols;
    float mx, sum;
    row_stats(p, cols, s, mx, sum);
    float inv = 1.0f / sum;
    i64 t = target[r];
    for (i64 j = tid_x(); j < cols; j += BLOCK)
      dx[r * cols + j] = st<S>((exp_f(ld(p[j]) - mx) * inv - (j == t ? 1.0f : 0.0f)) * g);
  }
}

#define SOFTMAX_KERNELS(S, sfx)                                                                                   \
  KERNEL void softmax_##sfx(i64 rows, i64 cols, const S* __restrict__ x, S* __restrict__ y) {                     \
    __shared__ float s[BLOCK]; softmax_rows(rows, cols, x, y, s); }                                               \
  KERNEL void log_softmax_##sfx(i64 rows, i64 cols, const S* __restrict__ x, S* __restrict__ y) {                 \
    __shared__ float s[BLOCK]; log_softmax_rows(rows, cols, x, y, s); }                                           \
  KERNEL void softmax_backward_##sfx(i64 rows, i64 cols, const S* __restrict__ y, const S* __restrict__ dy,       \
                                     S* __restrict__ dx) {                                                        \
    __shared__ float s[BLOCK]; softmax_backward_rows(rows, cols, y, dy, dx, s); }                                 \
  KERNEL void log_softmax_backward_##sfx(i64 rows, i64 cols, const S* __restrict__ y, const S* __restrict__ dy,   \
                                         S* __restrict__ dx) {                                                    \
    __shared__ float s[BLOCK]; log_softmax_backward_rows(rows, cols, y, dy, dx, s); }                             \
  KERNEL void cross_entropy_forward_##sfx(i64 rows, i64 cols, const S* __restrict__ logits, const i64* __restrict__ target, \
                                          float* __restrict__ loss) {                                             \
    __shared__ float s[BLOCK]; cross_entropy_forward_rows(rows, cols, logits, target, loss, s); }                 \
  KERNEL void cross_entropy_backward_##sfx(i64 rows, i64 cols, const S* __restrict__ logits, const i64* __restrict__ target, \
                                           const float* __restrict__ dloss, float scale, S* __restrict__ dx) {    \
    __shared__ float s[BLOCK]; cross_entropy_backward_rows(rows, cols, logits, target, dloss, scale, dx, s); }

SOFTMAX_KERNELS(float, f32)
SOFTMAX_KERNELS(bf16, bf16)
