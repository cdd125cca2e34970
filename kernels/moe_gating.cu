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

// ======================= One fused gating pass: forward and backward in one launch each =======================
// moe_gating_fused_f32 does everything of the forward above plus the importance/load totals and the auxiliary loss
// aux = w_imp·CV²(importance) + w_load·CV²(load) (CV² = population variance / (mean² + 1e-10)), for E ≤ 64, k ≤ 8,
// in ONE launch; moe_gating_fused_backward_f32 takes the upstream gradient of the gates, of importance/load and of
// aux, and writes the gradients of clean and raw in ONE launch. Same semantics and tie rule as the kernels above
// and the CPU reference (top m = min(k+1, E) noisy logits, larger first, equal values → lower expert index; NaN
// logits never win a rank while a number is left).
//
// Row work: one warp per row, lane l holds experts l and l + 32. Each rank of the top m is one warp max over the
// values (5 shuffles) and two ballots that pick the lowest expert index holding the max — instead of shuffling
// (value, index) pairs (10 shuffles). Each warp walks MOE_FUSED_ROWS_PER_WARP consecutive rows and loads row i+1
// while it computes row i.
//
// Fixed summation order of importance and load (no float atomics; bit-identical run to run):
//   1. lane sums over its warp's 8 consecutive rows, in row order (the CPU reference's 8-row partial);
//   2. block partial = warps 0..7 in order → part[q][blk][e];
//   3. group partial = the MOE_FUSED_GROUP blocks of a group in block order, summed by the group's last block to
//      finish (an unsigned atom.add on counters[g] only elects that block; the sum's order does not depend on it);
//   4. total = group partials in group order, summed by the last group to finish, which also writes aux.
// The counters must be zero before the first launch; the electing blocks reset them, so they stay zero between
// launches (a launch that dies half-way leaves them dirty: zero them again after an error).
//
// Estimates at B = 65536, E = 64, k = 2, float32 (nblk = 1024 blocks of 64 rows, 32 groups):
//   forward  DRAM: read clean, raw, ε 3·B·E·4 = 50.3 MB; write gates B·E·4 = 16.8 MB, top_idx B·k·4 = 0.5 MB
//            (top_gates another 0.5 MB when asked); partials 2·nblk·E·4 = 0.5 MB + 16 KB, written and read back
//            from L2 → ≈ 67.6 MB: 50 % of HBM is 40 µs on an H100 SXM (3.35 TB/s), 28 µs on an H200 (4.8 TB/s).
//            1 launch (the composed path: gating + reduce + ~12 generic launches for the two CV² and aux).
//   backward DRAM: read clean, raw, ε, grad gates 4·B·E·4 = 67.1 MB; write grad clean, grad raw 33.6 MB →
//            ≈ 100.7 MB (50 % of HBM: 60 µs H100, 42 µs H200). 1 launch.
//   Shuffles per row: 5·m (ranks) + k (softmax dot, backward) + 10 (threshold sums, backward).

#define MOE_FUSED_WARPS 8
#define MOE_FUSED_ROWS_PER_WARP 8
#define MOE_FUSED_ROWS (MOE_FUSED_WARPS * MOE_FUSED_ROWS_PER_WARP)   // rows per block (IBackend side must agree)
#define MOE_FUSED_THREADS (32 * MOE_FUSED_WARPS)
#define MOE_FUSED_GROUP 32                                             // blocks per group partial

MOE_DEV unsigned moe_ballot(bool p) {
  unsigned r;
  asm volatile("{ .reg .pred q; setp.ne.u32 q, %1, 0; vote.sync.ballot.b32 %0, q, 0xffffffff; }" : "=r"(r) : "r"((unsigned)p));
  return r;
}
MOE_DEV int moe_lowest_bit(unsigned b) { return __builtin_ctz(b); }
// Release/acquire around the election: partials written before the atom.add are visible to the elected block.
MOE_DEV void moe_fence() { asm volatile("membar.gl;" ::: "memory"); }
MOE_DEV unsigned moe_atomic_inc(unsigned* p) {
  unsigned old;
  asm volatile("atom.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(p) : "memory");
  return old;
}
// Loads that skip L1 (another SM wrote the data during this launch).
MOE_DEV float moe_ld_cg(const float* p) {
  float v;
  asm volatile("ld.cg.f32 %0, [%1];" : "=f"(v) : "l"(p) : "memory");
  return v;
}

// Raw inputs of one row for experts lane and lane + 32.
struct MoeFusedIn { float c[2], r[2], n[2]; };

MOE_DEV void moe_fused_load(MoeFusedIn& in, const float* clean, const float* raw, const float* noise, int row, int E, int lane) {
#pragma unroll
  for (int h = 0; h < 2; h++) {
    int e = lane + 32 * h;
    in.c[h] = 0.0f; in.r[h] = 0.0f; in.n[h] = 0.0f;
    if (e < E) {
      long long at = (long long)row * E + e;
      in.c[h] = clean[at];
      if (raw) { in.r[h] = raw[at]; in.n[h] = noise[at]; }
    }
  }
}

// One row's routing state, identical in every lane for the rank lists.
// MT: the longest top list kept (k + 1 ≤ MT): 3 for the k ≤ 2 kernels, MOE_MAX_TOP for the general ones.
template <int MT>
struct MoeFusedRow {
  float c[2], s[2], eps[2], nz[2], gate[2];
  bool in_top[2];
  float thr_in, thr_out;           // noisy values ranked k (the (k+1)-th) and k − 1 (the k-th)
  int top_i[MT];
  float top_v[MT], top_g[MT];
};

template <int MT>
MOE_DEV void moe_fused_row(MoeFusedRow<MT>& r, const MoeFusedIn& in, bool noisy, int E, int k, float floor_) {
  int lane = moe_tid() & 31;
  int m = k + 1 < E ? k + 1 : E;
  bool valid[2] = {lane < E, lane + 32 < E}, taken[2] = {false, false};
#pragma unroll
  for (int h = 0; h < 2; h++) {
    r.c[h] = in.c[h]; r.s[h] = 1.0f; r.eps[h] = 0.0f; r.gate[h] = 0.0f; r.in_top[h] = false;
    if (valid[h] && noisy) { r.s[h] = moe_softplus(in.r[h]) + floor_; r.eps[h] = in.n[h]; r.nz[h] = in.c[h] + in.n[h] * r.s[h]; }
    else r.nz[h] = in.c[h];
  }
#pragma unroll
  for (int i = 0; i < MT; i++) {
    r.top_v[i] = -MOE_INF; r.top_i[i] = 0; r.top_g[i] = 0.0f;
    if (i < m) {
      float lv = -MOE_INF;
#pragma unroll
      for (int h = 0; h < 2; h++) if (valid[h] && !taken[h] && r.nz[h] > lv) lv = r.nz[h];   // NaN never compares greater
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) { float o = moe_shfl_xor(lv, off); lv = o > lv ? o : lv; }
      unsigned b0 = moe_ballot(valid[0] && !taken[0] && r.nz[0] == lv);
      unsigned b1 = moe_ballot(valid[1] && !taken[1] && r.nz[1] == lv);
      int win;
      if (b0) win = moe_lowest_bit(b0);            // experts 0..31 have the lower indices
      else if (b1) win = 32 + moe_lowest_bit(b1);
      else {                                       // only NaN left: the lowest untaken expert, with its value
        unsigned f0 = moe_ballot(valid[0] && !taken[0]);
        win = f0 ? moe_lowest_bit(f0) : 32 + moe_lowest_bit(moe_ballot(valid[1] && !taken[1]));
        lv = moe_shfl(win < 32 ? r.nz[0] : r.nz[1], win & 31);
      }
      r.top_v[i] = lv; r.top_i[i] = win;
      if (win == lane) taken[0] = true;
      if (win == lane + 32) taken[1] = true;
    }
  }
  // Softmax over the top k, summed in rank order.
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < MT; i++) if (i < k) { r.top_g[i] = moe_exp(r.top_v[i] - r.top_v[0]); sum += r.top_g[i]; }
  r.thr_in = 0.0f; r.thr_out = 0.0f;
#pragma unroll
  for (int i = 0; i < MT; i++) {
    if (i < k) {
      r.top_g[i] = r.top_g[i] / sum;
      if (r.top_i[i] == lane) { r.gate[0] = r.top_g[i]; r.in_top[0] = true; }
      if (r.top_i[i] == lane + 32) { r.gate[1] = r.top_g[i]; r.in_top[1] = true; }
    }
    if (i == k && i < m) r.thr_in = r.top_v[i];
    if (i == k - 1) r.thr_out = r.top_v[i];
  }
}

// CV² of v[0..E) and its gradient: cv2 = var/(mean² + 1e-10), var = Σ(v − mean)²/E; every caller runs this same
// serial code, so every block gets the same bits.
MOE_DEV float moe_cv2(const float* v, int E, float* mean_out, float* var_out) {
  float s = 0.0f;
  for (int e = 0; e < E; e++) s += v[e];
  float mean = s / (float)E, q = 0.0f;
  for (int e = 0; e < E; e++) { float d = v[e] - mean; q += d * d; }
  float var = q / (float)E;
  *mean_out = mean; *var_out = var;
  return var / (mean * mean + 1e-10f);
}
// ∂cv2/∂v_e = (2(v_e − mean)/E)/D − var·(2·mean/E)/D², D = mean² + 1e-10.
MOE_DEV float moe_cv2_grad(float ve, float mean, float var, int E) {
  float D = mean * mean + 1e-10f;
  return (2.0f * (ve - mean) / (float)E) / D - var * (2.0f * mean / (float)E) / (D * D);
}

// clean, raw, noise: [B, E] (raw = x·W_noise before softplus, noise = ε; both null when noiseless).
// packed: [B + 2, E] out (gates, then importance and load totals). top_idx: [B, k] out; top_gates: [B, k] out or null
// (the gates of top_idx, for a combine that skips the dense gates). part: scratch of 2·nblk·E + 2·ngroups·E floats,
// ngroups = ⌈nblk / MOE_FUSED_GROUP⌉. counters: ngroups + 1 unsigned, zero (see above). aux: [3] out or null
// (aux, CV²(importance), CV²(load)). Launch: ⌈B / MOE_FUSED_ROWS⌉ blocks of MOE_FUSED_THREADS threads; E ≤ 64, k ≤ 8
// (moe_gating_fused_k2_f32: k ≤ 2, a shorter top list and fewer registers).
template <int MT>
MOE_DEV void moe_gating_fused(const float* clean, const float* raw, const float* noise, float* packed, int* top_idx,
                              float* top_gates, float* part, unsigned* counters, float* aux, int B, int E, int k,
                              float noise_floor, float w_imp, float w_load) {
  __shared__ float sh_imp[MOE_FUSED_WARPS][64];
  __shared__ float sh_load[MOE_FUSED_WARPS][64];
  __shared__ float sh_tot[2][64];
  __shared__ int s_last;
  int t = moe_tid(), lane = t & 31, warp = t >> 5;
  int blk = moe_ctaid(), nblk = moe_nctaid();
  bool noisy = raw != 0, prob = noisy && k < E;
  float imp[2] = {0.0f, 0.0f}, load[2] = {0.0f, 0.0f};
  int row0 = blk * MOE_FUSED_ROWS + warp * MOE_FUSED_ROWS_PER_WARP;
  MoeFusedIn cur, nxt;
  if (row0 < B) moe_fused_load(cur, clean, raw, noise, row0, E, lane);
  for (int i = 0; i < MOE_FUSED_ROWS_PER_WARP; i++) {
    int row = row0 + i;
    if (row >= B) break;   // warp-uniform
    if (i + 1 < MOE_FUSED_ROWS_PER_WARP && row + 1 < B) moe_fused_load(nxt, clean, raw, noise, row + 1, E, lane);
    MoeFusedRow<MT> r;
    moe_fused_row(r, cur, noisy, E, k, noise_floor);
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int e = lane + 32 * h;
      if (e >= E) continue;
      packed[(long long)row * E + e] = r.gate[h];
      imp[h] += r.gate[h];
      load[h] += prob ? moe_norm_cdf((r.c[h] - (r.in_top[h] ? r.thr_in : r.thr_out)) / r.s[h]) : (r.in_top[h] ? 1.0f : 0.0f);
    }
    if (lane < k) {
      int v = 0; float g = 0.0f;
#pragma unroll
      for (int j = 0; j < MT; j++) if (j == lane) { v = r.top_i[j]; g = r.top_g[j]; }
      top_idx[(long long)row * k + lane] = v;
      if (top_gates) top_gates[(long long)row * k + lane] = g;
    }
    cur = nxt;
  }
  sh_imp[warp][lane] = imp[0]; sh_imp[warp][lane + 32] = imp[1];
  sh_load[warp][lane] = load[0]; sh_load[warp][lane + 32] = load[1];
  moe_sync();
  int ngroups = (nblk + MOE_FUSED_GROUP - 1) / MOE_FUSED_GROUP;
  float* gpart = part + 2LL * nblk * E;   // [2, ngroups, E]
  if (t < 2 * E) {                        // level 2: warps in order
    int q = t / E, e = t - q * E;
    float a = q == 0 ? sh_imp[0][e] : sh_load[0][e];
    for (int w = 1; w < MOE_FUSED_WARPS; w++) a += q == 0 ? sh_imp[w][e] : sh_load[w][e];
    part[((long long)q * nblk + blk) * E + e] = a;
  }
  // Level 3: the last block of this group to finish sums the group's partials in block order.
  int g = blk / MOE_FUSED_GROUP, gb0 = g * MOE_FUSED_GROUP;
  int gb1 = gb0 + MOE_FUSED_GROUP < nblk ? gb0 + MOE_FUSED_GROUP : nblk;
  moe_fence();   // every writer publishes its partial before the block's election
  moe_sync();
  if (t == 0) { moe_fence(); s_last = moe_atomic_inc(counters + g) == (unsigned)(gb1 - gb0 - 1); }
  moe_sync();
  if (!s_last) return;   // block-uniform
  moe_fence();
  if (t < 2 * E) {
    int q = t / E, e = t - q * E;
    const float* p = part + (long long)q * nblk * E + e;
    float a = moe_ld_cg(p + (long long)gb0 * E);
    for (int b = gb0 + 1; b < gb1; b++) a += moe_ld_cg(p + (long long)b * E);
    gpart[((long long)q * ngroups + g) * E + e] = a;
  }
  moe_fence();
  moe_sync();
  if (t == 0) { counters[g] = 0; moe_fence(); s_last = moe_atomic_inc(counters + ngroups) == (unsigned)(ngroups - 1); }
  moe_sync();
  if (!s_last) return;
  moe_fence();
  // Level 4: the last group sums the group partials in group order and writes the totals and aux.
  if (t < 2 * E) {
    int q = t / E, e = t - q * E;
    const float* p = gpart + (long long)q * ngroups * E + e;
    float a = moe_ld_cg(p);
    for (int gg = 1; gg < ngroups; gg++) a += moe_ld_cg(p + (long long)gg * E);
    packed[(long long)(B + q) * E + e] = a;
    sh_tot[q][e] = a;
  }
  moe_sync();
  if (t == 0) {
    counters[ngroups] = 0;
    if (aux) {
      float mi, vi, ml, vl;
      float ci = moe_cv2(sh_tot[0], E, &mi, &vi), cl = moe_cv2(sh_tot[1], E, &ml, &vl);
      aux[0] = w_imp * ci + w_load * cl; aux[1] = ci; aux[2] = cl;
    }
  }
}

// Backward of moe_gating_fused_f32 with the aux loss folded in. packed: [B + 2, E], the forward's output (rows B, B+1
// are read: importance and load). grad_packed: [B + 2, E] upstream gradient of packed, or null (zero). grad_aux: [1]
// upstream gradient of aux, or null (zero). grad_clean: [B, E] out; grad_raw: [B, E] out (null when noiseless).
// Every block first forms d importance_e = grad_packed[B, e] + grad_aux·w_imp·∂CV²/∂importance_e (likewise load) in
// shared memory, by the same serial code, then its warps run the rows. The threshold gradients (−Σ coef over the
// experts inside, resp. outside, the top k) are butterfly sums over the lanes (fixed order). Launch: ⌈B /
// MOE_FUSED_ROWS⌉ blocks of MOE_FUSED_THREADS threads; E ≤ 64, k ≤ 8 (moe_gating_fused_backward_k2_f32: k ≤ 2).
template <int MT>
MOE_DEV void moe_gating_fused_backward(const float* clean, const float* raw, const float* noise, const float* packed,
                                       const float* grad_packed, const float* grad_aux, float* grad_clean, float* grad_raw,
                                       int B, int E, int k, float noise_floor, float w_imp, float w_load) {
  __shared__ float sh_v[2][64];
  __shared__ float sh_d[2][64];
  __shared__ float sh_stat[4];
  int t = moe_tid(), lane = t & 31, warp = t >> 5;
  bool noisy = raw != 0, prob = noisy && k < E;
  if (t < 2 * E) { int q = t / E, e = t - q * E; sh_v[q][e] = packed[(long long)(B + q) * E + e]; }
  moe_sync();
  if (t == 0) {
    float mi, vi, ml, vl;
    moe_cv2(sh_v[0], E, &mi, &vi); moe_cv2(sh_v[1], E, &ml, &vl);
    sh_stat[0] = mi; sh_stat[1] = vi; sh_stat[2] = ml; sh_stat[3] = vl;
  }
  moe_sync();
  float ga = grad_aux ? grad_aux[0] : 0.0f;
  if (t < 2 * E) {
    int q = t / E, e = t - q * E;
    float direct = grad_packed ? grad_packed[(long long)(B + q) * E + e] : 0.0f;
    float w = q == 0 ? w_imp : w_load;
    sh_d[q][e] = direct + ga * w * moe_cv2_grad(sh_v[q][e], sh_stat[2 * q], sh_stat[2 * q + 1], E);
  }
  moe_sync();
  int row0 = moe_ctaid() * MOE_FUSED_ROWS + warp * MOE_FUSED_ROWS_PER_WARP;
  MoeFusedIn cur, nxt;
  if (row0 < B) moe_fused_load(cur, clean, raw, noise, row0, E, lane);
  for (int i = 0; i < MOE_FUSED_ROWS_PER_WARP; i++) {
    int row = row0 + i;
    if (row >= B) break;   // warp-uniform
    if (i + 1 < MOE_FUSED_ROWS_PER_WARP && row + 1 < B) moe_fused_load(nxt, clean, raw, noise, row + 1, E, lane);
    MoeFusedRow<MT> r;
    moe_fused_row(r, cur, noisy, E, k, noise_floor);
    float dg[2], dn[2] = {0.0f, 0.0f}, dc[2] = {0.0f, 0.0f}, ds[2] = {0.0f, 0.0f};
    bool valid[2] = {lane < E, lane + 32 < E};
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int e = lane + 32 * h;
      dg[h] = valid[h] ? (grad_packed ? grad_packed[(long long)row * E + e] : 0.0f) + sh_d[0][e] : 0.0f;
    }
    // Softmax over the top k: dn = gate·(dg − Σ_rank gate·dg), the dot in rank order.
    float dot = 0.0f;
#pragma unroll
    for (int j = 0; j < MT; j++) {
      if (j < k) {
        int x = r.top_i[j];
        float mine = x < 32 ? r.gate[0] * dg[0] : r.gate[1] * dg[1];
        dot += moe_shfl(mine, x & 31);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) if (r.in_top[h]) dn[h] = r.gate[h] * (dg[h] - dot);
    if (prob) {
      float in_sum = 0.0f, out_sum = 0.0f;
#pragma unroll
      for (int h = 0; h < 2; h++) {
        if (!valid[h]) continue;
        float z = (r.c[h] - (r.in_top[h] ? r.thr_in : r.thr_out)) / r.s[h];
        float coef = sh_d[1][lane + 32 * h] * moe_norm_pdf(z) / r.s[h];
        dc[h] = coef;
        ds[h] = -coef * z;
        if (r.in_top[h]) in_sum += coef; else out_sum += coef;
      }
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) { in_sum += moe_shfl_xor(in_sum, off); out_sum += moe_shfl_xor(out_sum, off); }
      // The threshold experts: rank k for the experts inside the top k, rank k − 1 for those outside.
      int t_in = 0, t_out = 0;
#pragma unroll
      for (int j = 0; j < MT; j++) { if (j == k) t_in = r.top_i[j]; if (j == k - 1) t_out = r.top_i[j]; }
      if (t_in == lane) dn[0] -= in_sum;
      if (t_in == lane + 32) dn[1] -= in_sum;
      if (t_out == lane) dn[0] -= out_sum;
      if (t_out == lane + 32) dn[1] -= out_sum;
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
      int e = lane + 32 * h;
      if (!valid[h]) continue;
      long long at = (long long)row * E + e;
      grad_clean[at] = dc[h] + dn[h];
      if (noisy) grad_raw[at] = (ds[h] + dn[h] * r.eps[h]) * moe_sigmoid(cur.r[h]);
    }
    cur = nxt;
  }
}

#define MOE_FUSED_FWD_PARAMS const float* clean, const float* raw, const float* noise, float* packed, int* top_idx,        \
  float* top_gates, float* part, unsigned* counters, float* aux, int B, int E, int k, float noise_floor, float w_imp, float w_load
#define MOE_FUSED_BWD_PARAMS const float* clean, const float* raw, const float* noise, const float* packed,                \
  const float* grad_packed, const float* grad_aux, float* grad_clean, float* grad_raw, int B, int E, int k,                  \
  float noise_floor, float w_imp, float w_load
// Each kernel is declared first with its launch bounds (the attribute merges into the definition), so that the
// definition keeps the plain `extern "C" __global__ void name(` form the PTX tests look for.
#define MOE_FUSED_KERNELS(MT, MINB, sfx)                                                                            \
  MOE_KERNEL void moe_gating_fused_##sfx(MOE_FUSED_FWD_PARAMS) __attribute__((launch_bounds(MOE_FUSED_THREADS, MINB))); \
  MOE_KERNEL void moe_gating_fused_##sfx(MOE_FUSED_FWD_PARAMS) {                                                    \
    moe_gating_fused<MT>(clean, raw, noise, packed, top_idx, top_gates, part, counters, aux, B, E, k, noise_floor, w_imp, w_load); } \
  MOE_KERNEL void moe_gating_fused_backward_##sfx(MOE_FUSED_BWD_PARAMS)                                             \
    __attribute__((launch_bounds(MOE_FUSED_THREADS, MINB)));                                                        \
  MOE_KERNEL void moe_gating_fused_backward_##sfx(MOE_FUSED_BWD_PARAMS) {                                           \
    moe_gating_fused_backward<MT>(clean, raw, noise, packed, grad_packed, grad_aux, grad_clean, grad_raw, B, E, k,   \
                                  noise_floor, w_imp, w_load); }

// MINB: blocks kept resident per SM, which caps registers at 65536 / (256·MINB) — 64 for the k ≤ 2 kernels (32
// warps per SM, enough in flight to keep HBM busy with one row of loads ahead each); the k ≤ 8 list needs more
// registers (2 blocks; at 3 blocks, i.e. 80 registers, ptxas spills a few bytes).
MOE_FUSED_KERNELS(3, 4, k2_f32)
MOE_FUSED_KERNELS(MOE_MAX_TOP, 2, f32)
