// MoE routing, dispatch and combine, and their backward (float32 or bf16 data, int32 indices). The CPU reference is
// engine/Backends/Cpu/CpuBackend.Moe.cs; results match it bit for bit (no FMA contraction in the sums, the same
// summation orders, no atomics anywhere).
//
// Routing of topIdx [B, k] (P = B·k (row, choice) pairs, row-major), MOE_ROUTE_CHUNK pairs per block:
//   1. moe_route_count_i32: per-chunk histogram and each pair's rank among equal experts earlier in its chunk;
//   2. moe_route_scan_i32 (one block): per expert, exclusive scan of the chunk counts in chunk order; kept counts
//      (capacity), exclusive scan over experts → offsets [E + 1], dropped count;
//   3. moe_route_place_i32: the r-th pair (in row-major order) routed to expert e is kept when r < kept[e], at
//      buffer row offsets[e] + r — the stable placement of the CPU (batch order inside each expert).
// bf16 variants (<op>_bf16): the activations x, buffer, y, out and their gradients are bf16; gates and their gradient
// stay float32 (the gating runs in float32 under autocast); sums and products run in float32 in the same order as
// the f32 kernels, rounded once on store.
#include "moe_common.cuh"

// clang's CUDA default -ffp-contract=fast ignores `#pragma clang fp contract` and folds the rn builtins into FMAs,
// so products that are summed use mul.rn/add.rn through inline PTX (ptxas never fuses explicitly rounded ops):
// the same rounding as the CPU's `acc += a * b`.
MOE_DEV float moe_mul(float a, float b) { float r; asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b)); return r; }
MOE_DEV float moe_add(float a, float b) { float r; asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b)); return r; }

#define MOE_ROUTE_CHUNK 256

// top: [P] expert per pair; rank: [P] out; block_counts: [nblk, E] out; error: [1] set to 1 on an index outside [0, E).
// Launch: ceil(P / MOE_ROUTE_CHUNK) blocks of MOE_ROUTE_CHUNK threads.
MOE_KERNEL void moe_route_count_i32(const int* top, int* rank, int* block_counts, int* error, int P, int E) {
  __shared__ int s_e[MOE_ROUTE_CHUNK];
  int t = moe_tid(), blk = moe_ctaid();
  long long p = (long long)blk * MOE_ROUTE_CHUNK + t;
  int e = p < P ? top[p] : -1;
  if (p < P && (e < 0 || e >= E)) { *error = 1; e = -1; }
  s_e[t] = e;
  moe_sync();
  if (p < P) {
    int r = 0;
    for (int q = 0; q < t; q++) r += s_e[q] == e;
    rank[p] = r;
  }
  for (int x = t; x < E; x += MOE_ROUTE_CHUNK) {
    int c = 0;
    for (int q = 0; q < MOE_ROUTE_CHUNK; q++) c += s_e[q] == x;
    block_counts[(long long)blk * E + x] = c;
  }
}

// block_counts: [nblk, E]; block_base: [nblk, E] out (pairs of expert e in earlier chunks); requested, kept: [E] out;
// offsets: [E + 1] out; dropped: [1] out. capacity < 0: dropless. Launch: one block, any thread count.
MOE_KERNEL void moe_route_scan_i32(const int* block_counts, int* block_base, int* requested, int* kept, int* offsets, int* dropped,
                                   int nblk, int E, int capacity) {
  int t = moe_tid(), nt = moe_ntid();
  for (int e = t; e < E; e += nt) {
    int run = 0;
    for (int b = 0; b < nblk; b++) { block_base[(long long)b * E + e] = run; run += block_counts[(long long)b * E + e]; }
    requested[e] = run;
    kept[e] = capacity < 0 || run < capacity ? run : capacity;
  }
  moe_sync();
  if (t == 0) {
    int off = 0, drop = 0;
    offsets[0] = 0;
    for (int e = 0; e < E; e++) { off += kept[e]; offsets[e + 1] = off; drop += requested[e] - kept[e]; }
    *dropped = drop;
  }
}

// top, rank: [P]; block_base: [nblk, E]; offsets: [E + 1]; kept: [E]; slot_of: [P] out (buffer row or −1);
// source_row: [N] out (batch row of each buffer row). Any grid.
MOE_KERNEL void moe_route_place_i32(const int* top, const int* rank, const int* block_base, const int* offsets, const int* kept,
                                    int* slot_of, int* source_row, int P, int k, int E) {
  for (long long p = (long long)moe_ctaid() * moe_ntid() + moe_tid(); p < P; p += (long long)moe_nctaid() * moe_ntid()) {
    int e = top[p];
    int r = block_base[(p / MOE_ROUTE_CHUNK) * E + e] + rank[p];
    if (r < kept[e]) { int pos = offsets[e] + r; slot_of[p] = pos; source_row[pos] = (int)(p / k); }
    else slot_of[p] = -1;
  }
}

// Dispatch: buffer[r, c] = x[source_row[r], c]. x: [B, D] with row stride ldx; source_row: [N]; buffer: [N, D] out. Any grid.
template <typename S>
MOE_DEV void moe_dispatch(const S* x, int ldx, const int* source_row, S* buffer, int N, int D) {
  long long n = (long long)N * D;
  for (long long i = (long long)moe_ctaid() * moe_ntid() + moe_tid(); i < n; i += (long long)moe_nctaid() * moe_ntid()) {
    long long r = i / D, c = i - r * D;
    buffer[i] = x[(long long)source_row[r] * ldx + c];
  }
}

// Dispatch backward (a gather, no scatter): dx[b, c] = Σ_{j<k} grad_buffer[slot_of[b, j], c] in j order, dropped skipped.
// grad_buffer: [N, D]; slot_of: [B, k]; dx: [B, D] out. Any grid.
template <typename S>
MOE_DEV void moe_dispatch_backward(const S* grad_buffer, const int* slot_of, S* dx, int B, int k, int D) {
  long long n = (long long)B * D;
  for (long long i = (long long)moe_ctaid() * moe_ntid() + moe_tid(); i < n; i += (long long)moe_nctaid() * moe_ntid()) {
    long long b = i / D, c = i - b * D;
    float acc = 0.0f;
    for (int j = 0; j < k; j++) {
      int p = slot_of[b * k + j];
      if (p >= 0) acc += ld(grad_buffer[(long long)p * D + c]);
    }
    dx[i] = st<S>(acc);
  }
}

// Combine: out[b, c] = Σ_{j<k} gates[b, top[b, j]] · y[slot_of[b, j], c] in j order, dropped skipped.
// y: [N, H]; gates: [B, E] float32; top, slot_of: [B, k]; out: [B, H]. Any grid.
template <typename S>
MOE_DEV void moe_combine(const S* y, const float* gates, const int* top, const int* slot_of, S* out, int B, int E, int k, int H) {
  long long n = (long long)B * H;
  for (long long i = (long long)moe_ctaid() * moe_ntid() + moe_tid(); i < n; i += (long long)moe_nctaid() * moe_ntid()) {
    long long b = i / H, c = i - b * H;
    float acc = 0.0f;
    for (int j = 0; j < k; j++) {
      int p = slot_of[b * k + j];
      if (p < 0) continue;
      acc = moe_add(acc, moe_mul(gates[b * E + top[b * k + j]], ld(y[(long long)p * H + c])));
    }
    out[i] = st<S>(acc);
  }
}

// Combine backward, one warp per (row, choice): grad_y[p, :] = gate · grad_out[b, :]; grad_gates[b, e] =
// dot(y[p, :], grad_out[b, :]) with lane l summing c ≡ l (mod 32) in order, then a butterfly over lanes 16, 8, 4, 2, 1
// (the CPU reference sums in this same order). grad_out: [B, H]; y: [N, H]; gates: [B, E] float32; top, slot_of: [B, k];
// grad_y: [N, H] out; grad_gates: [B, E] float32 out, zero-filled by the caller beforehand. Launch: 8 warps per block,
// ceil(B·k / 8) blocks.
template <typename S>
MOE_DEV void moe_combine_backward(const S* grad_out, const S* y, const float* gates, const int* top, const int* slot_of,
                                  S* grad_y, float* grad_gates, int B, int E, int k, int H) {
  int lane = moe_tid() & 31;
  long long pair = (long long)moe_ctaid() * (moe_ntid() >> 5) + (moe_tid() >> 5);
  if (pair >= (long long)B * k) return;   // warp-uniform
  int p = slot_of[pair];
  if (p < 0) return;                      // dropped: no gradient
  long long b = pair / k;
  int e = top[pair];
  float w = gates[b * E + e];
  const S* go = grad_out + b * H;
  const S* yr = y + (long long)p * H;
  S* gy = grad_y + (long long)p * H;
  float acc = 0.0f;
  for (int c = lane; c < H; c += 32) { float g = ld(go[c]); gy[c] = st<S>(w * g); acc = moe_add(acc, moe_mul(ld(yr[c]), g)); }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) acc += moe_shfl_xor(acc, off);
  if (lane == 0) grad_gates[b * E + e] = acc;
}

#define MOE_DISPATCH_KERNELS(S, sfx)                                                                              \
  MOE_KERNEL void moe_dispatch_##sfx(const S* x, int ldx, const int* source_row, S* buffer, int N, int D) {        \
    moe_dispatch(x, ldx, source_row, buffer, N, D); }                                                             \
  MOE_KERNEL void moe_dispatch_backward_##sfx(const S* grad_buffer, const int* slot_of, S* dx, int B, int k, int D) { \
    moe_dispatch_backward(grad_buffer, slot_of, dx, B, k, D); }                                                   \
  MOE_KERNEL void moe_combine_##sfx(const S* y, const float* gates, const int* top, const int* slot_of, S* out,    \
                                    int B, int E, int k, int H) {                                                 \
    moe_combine(y, gates, top, slot_of, out, B, E, k, H); }                                                       \
  MOE_KERNEL void moe_combine_backward_##sfx(const S* grad_out, const S* y, const float* gates, const int* top,     \
                                             const int* slot_of, S* grad_y, float* grad_gates, int B, int E, int k, int H) { \
    moe_combine_backward(grad_out, y, gates, top, slot_of, grad_y, grad_gates, B, E, k, H); }

MOE_DISPATCH_KERNELS(float, f32)
MOE_DISPATCH_KERNELS(bf16, bf16)
