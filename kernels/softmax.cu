// Softmax family over the last dim, one block of BLOCK threads per row, fixed-order reductions.
//   softmax_f32 / log_softmax_f32(i64 rows, i64 cols, const float* x, float* y)          x, y: [rows, cols]
//   softmax_backward_f32(rows, cols, const float* y, const float* dy, float* dx)          dx = y·(dy − Σ dy·y)
//   log_softmax_backward_f32(rows, cols, const float* y, const float* dy, float* dx)      dx = dy − e^y·Σ dy
//   cross_entropy_forward_f32(rows, cols, const float* logits, const i64* target, float* loss)
//       loss: [rows], loss[r] = logsumexp(logits[r]) − logits[r, target[r]]  (the mean is a separate reduction)
//   cross_entropy_backward_f32(rows, cols, const float* logits, const i64* target, const float* dloss, float scale, float* dx)
//       dx[r, c] = (softmax(logits[r])[c] − [c == target[r]]) · dloss[0] · scale   (scale = 1/rows for a mean)
#include "common.cuh"

struct MaxF { DEVINLINE float operator()(float a, float b) const { return max_f(a, b); } };

// Row max and Σ exp(x − max) for row p of length n (both reduced across the block).
DEVINLINE void row_stats(const float* p, i64 n, float* scratch, float& mx, float& sum) {
  float m = -__builtin_inff();
  for (i64 j = tid_x(); j < n; j += BLOCK) m = max_f(m, p[j]);
  mx = block_reduce(m, scratch, MaxF());
  float s = 0.0f;
  for (i64 j = tid_x(); j < n; j += BLOCK) s += exp_f(p[j] - mx);
  sum = block_reduce(s, scratch, AddOp());
}

KERNEL void softmax_f32(i64 rows, i64 cols, const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float s[BLOCK];
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const float* p = x + r * cols;
    float mx, sum;
    row_stats(p, cols, s, mx, sum);
    float inv = 1.0f / sum;
    for (i64 j = tid_x(); j < cols; j += BLOCK) y[r * cols + j] = exp_f(p[j] - mx) * inv;
  }
}

KERNEL void log_softmax_f32(i64 rows, i64 cols, const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float s[BLOCK];
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const float* p = x + r * cols;
    float mx, sum;
    row_stats(p, cols, s, mx, sum);
    float lse = mx + log_f(sum);
    for (i64 j = tid_x(); j < cols; j += BLOCK) y[r * cols + j] = p[j] - lse;
  }
}

KERNEL void softmax_backward_f32(i64 rows, i64 cols, const float* __restrict__ y, const float* __restrict__ dy,
                                 float* __restrict__ dx) {
  __shared__ float s[BLOCK];
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const float* py = y + r * cols;
    const float* pd = dy + r * cols;
    float acc = 0.0f;
    for (i64 j = tid_x(); j < cols; j += BLOCK) acc += py[j] * pd[j];
    float dot = block_reduce(acc, s, AddOp());
    for (i64 j = tid_x(); j < cols; j += BLOCK) dx[r * cols + j] = py[j] * (pd[j] - dot);
  }
}

KERNEL void log_softmax_backward_f32(i64 rows, i64 cols, const float* __restrict__ y, const float* __restrict__ dy,
                                     float* __restrict__ dx) {
  __shared__ float s[BLOCK];
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const float* py = y + r * cols;
    const float* pd = dy + r * cols;
    float acc = 0.0f;
    for (i64 j = tid_x(); j < cols; j += BLOCK) acc += pd[j];
    float total = block_reduce(acc, s, AddOp());
    for (i64 j = tid_x(); j < cols; j += BLOCK) dx[r * cols + j] = pd[j] - exp_f(py[j]) * total;
  }
}

KERNEL void cross_entropy_forward_f32(i64 rows, i64 cols, const float* __restrict__ logits, const i64* __restrict__ target,
                                      float* __restrict__ loss) {
  __shared__ float s[BLOCK];
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const float* p = logits + r * cols;
    float mx, sum;
    row_stats(p, cols, s, mx, sum);
    if (tid_x() == 0) {
      i64 t = target[r];
      // An out-of-range target yields NaN rather than reading out of bounds; the host validates targets.
      loss[r] = (t >= 0 && t < cols) ? mx + log_f(sum) - p[t] : __builtin_nanf("");
    }
  }
}

KERNEL void cross_entropy_backward_f32(i64 rows, i64 cols, const float* __restrict__ logits, const i64* __restrict__ target,
                                       const float* __restrict__ dloss, float scale, float* __restrict__ dx) {
  __shared__ float s[BLOCK];
  float g = dloss[0] * scale;
  for (i64 r = ctaid_x(); r < rows; r += nctaid_x()) {
    const float* p = logits + r * cols;
    float mx, sum;
    row_stats(p, cols, s, mx, sum);
    float inv = 1.0f / sum;
    i64 t = target[r];
    for (i64 j = tid_x(); j < cols; j += BLOCK)
      dx[r * cols + j] = (exp_f(p[j] - mx) * inv - (j == t ? 1.0f : 0.0f)) * g;
  }
}
