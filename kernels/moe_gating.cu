// Fused noisy top-k gating (Shazeer et al. 2017 as tensor2tensor's NoisyTopKGating), float32.
// The CPU reference is engine/Backends/Cpu/CpuBackend.Moe.cs; both follow the same algorithm:
//   σ = softplus(raw) + floor, noisy = clean + ε·σ (noiseless: noisy = clean, no σ);
//   top m = min(k+1, E) noisy logits, larger first, ties → lower expert index;
//   gates = softmax over the top k (Σ in rank order), zero elsewhere;
//   load_e = Φ((clean_e − thr)/σ_e), thr = m-th ranked value (index k) inside the top k, the k-th (index k−1)
//   outside; without noise or when k = E, load_e = 1 for the routed experts;
//   importance/load: per block of MOE_ROWS_PER_BLOCK rows, rows summed in order from 0, then the block
//   partials summed in a fixed order (per thread strided, then a shared-memory tree) by moe_gating_reduce_f32
//   (no atomics).
// Launch (forward): moe_gating_f32 when E ≤ 64 and k ≤ 8, else moe_gating_block_f32, both with
// MOE_GATING_THREADS threads and ceil(B / MOE_ROWS_PER_BLOCK) blocks; then moe_gating_reduce_f32 with
// 2·E blocks of MOE_REDUCE_THREADS threads. The block path takes dynamic shared memory (see its comment).
#include "moe_common.cuh"

// Per-row state of the warp path: lane l holds experts l and l + 32.
struct MoeRow {
  float c[2], s[2], eps[2], n[2], gate[2];
  bool in_top[2];
  float thr_in, thr_out;   // noisy values ranked k (the (k+1)-th) and k − 1 (the k-th)
  int top_i[MOE_MAX_TOP];
  float top_v[MOE_MAX_TOP];
};

// Loads row `row` and computes σ, noisy, the top-m, gates and thresholds; every lane ends with the full top list.
MOE_DEV void moe_row(MoeRow& r, const float* clean, const float* raw, const float* noise, int row, int E, int k, float floor_) {
  int lane = moe_tid() & 31;
  int m = k + 1 < E ? k + 1 : E;
#pragma unroll
  for (int h = 0; h < 2; h++) {
    int e = lane + 32 * h;
    r.c[h] = 0.0f; r.s[h] = 1.0f; r.eps[h] = 0.0f; r.n[h] = -MOE_INF; r.gate[h] = 0.0f; r.in_top[h] = false;
    if (e < E) {
      r.c[h] = clean[(long long)row * E + e];
      if (raw) {
        r.s[h] = moe_softplus(raw[(long long)row * E + e]) + floor_;
        r.eps[h] = noise[(long long)row * E + e];
        r.n[h] = r.c[h] + r.eps[h] * r.s[h];
      } else r.n[h] = r.c[h];
    }
  }
  bool taken0 = false, taken1 = false;
#pragma unroll
  for (int i = 0; i < MOE_MAX_TOP; i++) {
    r.top_v[i] = -MOE_INF; r.top_i[i] = 0x7fffffff;
    if (i < m) {
      float bv = -MOE_INF; int bi = 0x7fffffff;
      if (!taken0 && lane < E) { bv = r.n[0]; bi = lane; }
      if (!taken1 && lane + 32 < E && moe_better(r.n[1], lane + 32, bv, bi)) { bv = r.n[1]; bi = lane + 32; }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        float ov = moe_shfl_xor(bv, off); int oi = moe_shfl_xor_i(bi, off);
        if (moe_better(ov, oi, bv, bi)) { bv = ov; bi = oi; }
      }
      r.top_v[i] = bv; r.top_i[i] = bi;
      if (bi == lane) taken0 = true;
      if (bi == lane + 32) taken1 = true;
    }
  }
  // Softmax over the top k, summed in rank order.
  float sum = 0.0f, w0 = 0.0f, w1 = 0.0f;
  r.thr_in = 0.0f; r.thr_out = 0.0f;
#pragma unroll
  for (int i = 0; i < MOE_MAX_TOP; i++) {
    if (i < k) {
      float w = moe_exp(r.top_v[i] - r.top_v[0]);
      sum += w;
      if (r.top_i[i] == lane) { w0 = w; r.in_top[0] = true; }
      if (r.top_i[i] == lane + 32) { w1 = w; r.in_top[1] = true; }
    }
    if (i == k && i < m) r.thr_in = r.top_v[i];
    if (i == k - 1) r.thr_out = r.top_v[i];
  }
  r.gate[0] = r.in_top[0] ? w0 / sum : 0.0f;
  r.gate[1] = r.in_top[1] ? w1 / sum : 0.0f;
}

// clean, raw, noise: [B, E] row-major (raw = x·W_noise before softplus, noise = ε; both null when noiseless).
// packed: [B + 2, E] out, rows 0..B−1 (gates); rows B, B+1 come from moe_gating_reduce_f32.
// top_idx: [B, k] out, experts by decreasing noisy logit. part: [2, nblk, E] out, importance then load partials.
MOE_KERNEL void moe_gating_f32(const float* clean, const float* raw, const float* noise, float* packed, int* top_idx,
                               float* part, int B, int E, int k, float noise_floor) {
  __shared__ float sh_imp[MOE_ROWS_PER_BLOCK][64];
  __shared__ float sh_load[MOE_ROWS_PER_BLOCK][64];
  int lane = moe_tid() & 31, warp = moe_tid() >> 5;
  int blk = moe_ctaid(), nblk = moe_nctaid();
  int row = blk * MOE_ROWS_PER_BLOCK + warp;
  bool prob = raw != 0 && k < E;
  float imp[2] = {0.0f, 0.0f}, load[2] = {0.0f, 0.0f};
  if (row < B) {   // warp-uniform
    MoeRow r;
    moe_row(r, clean, raw, noise, row, E, k, noise_floor);
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int e = lane + 32 * h;
      if (e >= E) continue;
      packed[(long long)row * E + e] = r.gate[h];
      imp[h] = r.gate[h];
      if (prob) load[h] = moe_norm_cdf((r.c[h] - (r.in_top[h] ? r.thr_in : r.thr_out)) / r.s[h]);
      else load[h] = r.in_top[h] ? 1.0f : 0.0f;
    }
    if (lane < k) {
      int v = 0;
#pragma unroll
      for (int i = 0; i < MOE_MAX_TOP; i++) if (i == lane) v = r.top_i[i];
      top_idx[(long long)row * k + lane] = v;
    }
  }
  sh_imp[warp][lane] = imp[0]; sh_imp[warp][lane + 32] = imp[1];
  sh_load[warp][lane] = load[0]; sh_load[warp][lane + 32] = load[1];
  moe_sync();
  int t = moe_tid();
  if (t < E) {
    float a = 0.0f, b = 0.0f;
    for (int w = 0; w < MOE_ROWS_PER_BLOCK; w++) { a += sh_imp[w][t]; b += sh_load[w][t]; }
    part[(long long)blk * E + t] = a;
    part[(long long)nblk * E + (long long)blk * E + t] = b;
  }
}

// Second pass: packed[B + q, e] = Σ_blk part[q, blk, e] in block order (q = 0 importance, 1 load).
// part: [2, nblk, E]; packed: [B + 2, E]. Any launch covering 2·E threads.
MOE_KERNEL void moe_gating_reduce_f32(const float* part, float* packed, int B, int E, int nblk) {
  // One block per column i of [2, E] (importance then load): thread t adds partials t, t + T, … in order, then a
  // fixed shared-memory tree adds the T sums. Fixed order, no atomics: bit-identical run to run. (A single
  // thread per column walked all nblk partials serially: 3 ms of a 3.2 ms forward at B = 65536 on an H200.)
  __shared__ float sh[MOE_REDUCE_THREADS];
  int i = moe_ctaid(), t = moe_tid();
  if (i >= 2 * E) return;   // block-uniform
  int q = i / E, e = i - q * E;
  const float* p = part + (long long)q * nblk * E + e;
  float acc = 0.0f;
  for (int b = t; b < nblk; b += MOE_REDUCE_THREADS) acc += p[(long long)b * E];
  sh[t] = acc;
  moe_sync();
#pragma unroll
  for (int s = MOE_REDUCE_THREADS / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    moe_sync();
  }
  if (t == 0) packed[(long long)(B + q) * E + e] = sh[0];
}

// Block path (E > 64 or k > 8): the block walks its MOE_ROWS_PER_BLOCK rows one after another. Threads
// compute σ and noisy; thread 0 keeps the top m by insertion exactly as the CPU reference does.
// Dynamic shared memory: (5·E + 2·m) floats + m ints, m = min(k + 1, E). Same parameters as moe_gating_f32.
MOE_KERNEL void moe_gating_block_f32(const float* clean, const float* raw, const float* noise, float* packed, int* top_idx,
                                     float* part, int B, int E, int k, float noise_floor) {
  extern __shared__ float sh[];
  int m = k + 1 < E ? k + 1 : E;
  float* s_c = sh; float* s_s = s_c + E; float* s_n = s_s + E; float* s_imp = s_n + E; float* s_load = s_imp + E;
  float* s_tv = s_load + E; float* s_misc = s_tv + m; int* s_ti = (int*)(s_misc + m);
  int t = moe_tid(), nt = moe_ntid(), blk = moe_ctaid(), nblk = moe_nctaid();
  bool prob = raw != 0 && k < E;
  for (int e = t; e < E; e += nt) { s_imp[e] = 0.0f; s_load[e] = 0.0f; }
  for (int rr = 0; rr < MOE_ROWS_PER_BLOCK; rr++) {
    int row = blk * MOE_ROWS_PER_BLOCK + rr;
    if (row >= B) break;   // block-uniform
    for (int e = t; e < E; e += nt) {
      float c = clean[(long long)row * E + e];
      s_c[e] = c;
      if (raw) { float s = moe_softplus(raw[(long long)row * E + e]) + noise_floor; s_s[e] = s; s_n[e] = c + noise[(long long)row * E + e] * s; }
      else { s_s[e] = 1.0f; s_n[e] = c; }
    }
    moe_sync();
    if (t == 0) {
      int count = 0;
      for (int e = 0; e < E; e++) {
        float x = s_n[e]; int pos;
        if (count < m) pos = count++;
        else if (x > s_tv[m - 1]) pos = m - 1;
        else continue;
        while (pos > 0 && s_tv[pos - 1] < x) { s_tv[pos] = s_tv[pos - 1]; s_ti[pos] = s_ti[pos - 1]; pos--; }
        s_tv[pos] = x; s_ti[pos] = e;
      }
      float sum = 0.0f;
      for (int i = 0; i < k; i++) { float w = moe_exp(s_tv[i] - s_tv[0]); s_misc[i] = w; sum += w; }
      for (int i = 0; i < k; i++) { s_misc[i] = s_misc[i] / sum; top_idx[(long long)row * k + i] = s_ti[i]; }
    }
    moe_sync();
    for (int e = t; e < E; e += nt) {
      int rank = -1;
      for (int i = 0; i < k; i++) if (s_ti[i] == e) rank = i;
      float g = rank >= 0 ? s_misc[rank] : 0.0f;
      packed[(long long)row * E + e] = g;
      s_imp[e] += g;
      float l;
      if (prob) l = moe_norm_cdf((s_c[e] - (rank >= 0 ? s_tv[k] : s_tv[k - 1])) / s_s[e]);
      else l = rank >= 0 ? 1.0f : 0.0f;
      s_load[e] += l;
    }
    moe_sync();
  }
  for (int e = t; e < E; e += nt) {
    part[(long long)blk * E + e] = s_imp[e];
    part[(long long)nblk * E + (long long)blk * E + e] = s_load[e];
  }
}

// Backward, warp path (E ≤ 64, k ≤ 8), one warp per row, MOE_GATING_THREADS threads, ceil(B / 8) blocks.
// grad_packed: [B + 2, E] (gates, importance, load gradients); grad_clean: [B, E] out; grad_raw: [B, E] out (null when noiseless).
// Sums in the same order as the CPU: the softmax dot in rank order, the threshold gradients over experts in index order.
MOE_KERNEL void moe_gating_backward_f32(const float* clean, const float* raw, const float* noise, const float* grad_packed,
                                        float* grad_clean, float* grad_raw, int B, int E, int k, float noise_floor) {
  int lane = moe_tid() & 31, warp = moe_tid() >> 5;
  int row = moe_ctaid() * MOE_ROWS_PER_BLOCK + warp;
  if (row >= B) return;   // warp-uniform
  bool prob = raw != 0 && k < E;
  MoeRow r;
  moe_row(r, clean, raw, noise, row, E, k, noise_floor);
  float dg[2], dn[2] = {0.0f, 0.0f}, dc[2] = {0.0f, 0.0f}, ds[2] = {0.0f, 0.0f}, coef[2] = {0.0f, 0.0f};
#pragma unroll
  for (int h = 0; h < 2; h++) {
    int e = lane + 32 * h;
    dg[h] = e < E ? grad_packed[(long long)row * E + e] + grad_packed[(long long)B * E + e] : 0.0f;
  }
  // dot = Σ_{rank i < k} gate·dg of the expert ranked i.
  float dot = 0.0f;
#pragma unroll
  for (int i = 0; i < MOE_MAX_TOP; i++) {
    if (i < k) {
      int j = r.top_i[i];
      float mine = j < 32 ? r.gate[0] * dg[0] : r.gate[1] * dg[1];
      dot += moe_shfl(mine, j & 31);
    }
  }
#pragma unroll
  for (int h = 0; h < 2; h++) if (r.in_top[h]) dn[h] = r.gate[h] * (dg[h] - dot);
  if (prob) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int e = lane + 32 * h;
      if (e >= E) continue;
      float gl = grad_packed[(long long)(B + 1) * E + e];
      float z = (r.c[h] - (r.in_top[h] ? r.thr_in : r.thr_out)) / r.s[h];
      coef[h] = gl * moe_norm_pdf(z) / r.s[h];
      dc[h] = coef[h];
      ds[h] = -coef[h] * z;
    }
    // Threshold experts: rank k for experts inside the top k, rank k − 1 outside; −coef added in expert order.
    int t_in = 0, t_out = 0;
#pragma unroll
    for (int i = 0; i < MOE_MAX_TOP; i++) { if (i == k) t_in = r.top_i[i]; if (i == k - 1) t_out = r.top_i[i]; }
    float acc_in = moe_shfl(t_in < 32 ? dn[0] : dn[1], t_in & 31);
    float acc_out = moe_shfl(t_out < 32 ? dn[0] : dn[1], t_out & 31);
    for (int j = 0; j < E; j++) {
      float cj = moe_shfl(j < 32 ? coef[0] : coef[1], j & 31);
      int inj = moe_shfl_i(j < 32 ? (int)r.in_top[0] : (int)r.in_top[1], j & 31);
      if (inj) acc_in -= cj; else acc_out -= cj;
    }
    if (t_in == lane) dn[0] = acc_in;
    if (t_in == lane + 32) dn[1] = acc_in;
    if (t_out == lane) dn[0] = acc_out;
    if (t_out == lane + 32) dn[1] = acc_out;
  }
#pragma unroll
  for (int h = 0; h < 2; h++) {
    int e = lane + 32 * h;
    if (e >= E) continue;
    grad_clean[(long long)row * E + e] = dc[h] + dn[h];
    if (raw) grad_raw[(long long)row * E + e] = (ds[h] + dn[h] * r.eps[h]) * moe_sigmoid(raw[(long long)row * E + e]);
  }
}

// Backward, block path (E > 64 or k > 8): one block per row, any thread count. Thread 0 redoes the insertion
// top-m and the ordered sums; the other threads do the per-expert math. Dynamic shared memory:
// (6·E + 2·m + 2) floats + m ints. Same parameters as moe_gating_backward_f32; launch B blocks.
MOE_KERNEL void moe_gating_backward_block_f32(const float* clean, const float* raw, const float* noise, const float* grad_packed,
                                              float* grad_clean, float* grad_raw, int B, int E, int k, float noise_floor) {
  extern __shared__ float sh[];
  int m = k + 1 < E ? k + 1 : E;
  float* s_c = sh; float* s_s = s_c + E; float* s_n = s_s + E; float* s_dn = s_n + E; float* s_coef = s_dn + E; float* s_gate = s_coef + E;
  float* s_tv = s_gate + E; float* s_w = s_tv + m; float* s_acc = s_w + m; int* s_ti = (int*)(s_acc + 2);
  int t = moe_tid(), nt = moe_ntid(), row = moe_ctaid();
  if (row >= B) return;
  bool prob = raw != 0 && k < E;
  for (int e = t; e < E; e += nt) {
    float c = clean[(long long)row * E + e];
    s_c[e] = c; s_gate[e] = 0.0f; s_dn[e] = 0.0f;
    if (raw) { float s = moe_softplus(raw[(long long)row * E + e]) + noise_floor; s_s[e] = s; s_n[e] = c + noise[(long long)row * E + e] * s; }
    else { s_s[e] = 1.0f; s_n[e] = c; }
  }
  moe_sync();
  if (t == 0) {
    int count = 0;
    for (int e = 0; e < E; e++) {
      float x = s_n[e]; int pos;
      if (count < m) pos = count++;
      else if (x > s_tv[m - 1]) pos = m - 1;
      else continue;
      while (pos > 0 && s_tv[pos - 1] < x) { s_tv[pos] = s_tv[pos - 1]; s_ti[pos] = s_ti[pos - 1]; pos--; }
      s_tv[pos] = x; s_ti[pos] = e;
    }
    float sum = 0.0f;
    for (int i = 0; i < k; i++) { float w = moe_exp(s_tv[i] - s_tv[0]); s_w[i] = w; sum += w; }
    float dot = 0.0f;
    for (int i = 0; i < k; i++) {
      int j = s_ti[i];
      float g = s_w[i] / sum;
      s_gate[j] = g;
      dot += g * (grad_packed[(long long)row * E + j] + grad_packed[(long long)B * E + j]);
    }
    for (int i = 0; i < k; i++) {
      int j = s_ti[i];
      s_dn[j] = s_gate[j] * (grad_packed[(long long)row * E + j] + grad_packed[(long long)B * E + j] - dot);
    }
  }
  moe_sync();
  for (int e = t; e < E; e += nt) {
    float dc = 0.0f, ds = 0.0f, coef = 0.0f;
    if (prob) {
      bool in_top = false;
      for (int i = 0; i < k; i++) if (s_ti[i] == e) in_top = true;
      float z = (s_c[e] - (in_top ? s_tv[k] : s_tv[k - 1])) / s_s[e];
      coef = grad_packed[(long long)(B + 1) * E + e] * moe_norm_pdf(z) / s_s[e];
      dc = coef; ds = -coef * z;
    }
    s_coef[e] = coef;
    grad_clean[(long long)row * E + e] = dc;   // the noisy part is added below
    if (raw) grad_raw[(long long)row * E + e] = ds;
  }
  moe_sync();
  if (t == 0 && prob) {
    int t_in = s_ti[k], t_out = s_ti[k - 1];
    float acc_in = s_dn[t_in], acc_out = s_dn[t_out];
    for (int j = 0; j < E; j++) {
      bool in_top = false;
      for (int i = 0; i < k; i++) if (s_ti[i] == j) in_top = true;
      if (in_top) acc_in -= s_coef[j]; else acc_out -= s_coef[j];
    }
    s_dn[t_in] = acc_in; s_dn[t_out] = acc_out;
  }
  moe_sync();
  for (int e = t; e < E; e += nt) {
    float dn = s_dn[e];
    grad_clean[(long long)row * E + e] += dn;
    if (raw) {
      float eps = noise[(long long)row * E + e];
      grad_raw[(long long)row * E + e] = (grad_raw[(long long)row * E + e] + dn * eps) * moe_sigmoid(raw[(long long)row * E + e]);
    }
  }
}
