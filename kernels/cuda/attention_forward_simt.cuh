// Attention forward on CUDA cores (any even dh <= 256, f32 or bf16 storage, fp32
// arithmetic): the general path, and the one f32 runs are compared with at 1e-4.
//
// A CTA owns kBlockM = 32 queries of one (b, h) pair; warp w owns queries 8w..8w+7.
// It walks the key tiles of QueryTilePlan (attention_rule.cuh), kBlockN = 32 keys each
// (lane = key slot while scoring), staged in shared memory as fp32:
//   sQ (32, dh)       queries, read as warp-wide broadcasts
//   sK (32, dh + 1)   keys; lane j reads row j, and the odd row pitch puts the 32
//                     lanes' column-c elements in 32 different banks
//   sV (32, dh)       values; lane = output column when accumulating P V
// Per query row an online softmax in base 2 (scores pre-multiplied by log2(e)/sqrt(dh)):
// running max m (the same in every lane: warp_max), per-lane partial sum l, and the
// output accumulator acc (lane owns columns lane + 32c), all rescaled by 2^(m_old -
// m_new) when the max grows. A row whose keys so far are all masked keeps m = -inf and
// exponentiates against 0 instead, so that -inf - -inf never makes a NaN.
// The per-warp part (SimtForwardRows) also serves attention over an explicit key set
// (attention_keys.cu), whose CTA differs only in which keys it stages and how it masks.
#pragma once

#include "kernels/cuda/attention_common.cuh"

namespace ratrain::cuda {

struct SimtForwardConfig {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kRowsPerWarp = 8;
  static constexpr int kBlockM = kWarps * kRowsPerWarp;  // 32 queries per CTA
  static constexpr int kBlockN = 32;                     // keys per tile: one per lane
  static std::size_t smem_bytes(int dh) {
    return sizeof(float) * (std::size_t{kBlockM} * dh + std::size_t{kBlockN} * (dh + 1) +
                            std::size_t{kBlockN} * dh);
  }
};

// The kRowsPerWarp query rows of one warp and their online softmax state (see above).
// kCols: output columns per lane, dh <= 32 kCols.
template <int kCols>
struct SimtForwardRows {
  static constexpr int kRows = SimtForwardConfig::kRowsPerWarp;
  float acc[kRows][kCols];
  float row_max[kRows];
  float row_sum[kRows];

  __device__ __forceinline__ SimtForwardRows() {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      row_max[r] = -INFINITY;
      row_sum[r] = 0.0f;
#pragma unroll
      for (int c = 0; c < kCols; ++c) acc[r][c] = 0.0f;
    }
  }

  // Folds one staged key tile into the rows: q_rows the warp's kRows queries (pitch dh),
  // s_k (kBlockN, dh + 1) and s_v (kBlockN, dh) the tile's keys and values (zeros in
  // empty slots). sees(r): whether row r sees the key in slot `lane` (false for an empty
  // slot).
  template <typename Sees>
  __device__ __forceinline__ void add_tile(const float* q_rows, const float* s_k, const float* s_v,
                                           int dh, float scale_log2, int lane, const Sees& sees) {
    const int k_pitch = dh + 1;
    // Scores of the warp's rows against key slot `lane`.
    float s[kRows] = {};
    for (int c = 0; c < dh; ++c) {
      const float kc = s_k[lane * k_pitch + c];
#pragma unroll
      for (int r = 0; r < kRows; ++r) s[r] += q_rows[r * dh + c] * kc;
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float score = sees(r) ? s[r] * scale_log2 : -INFINITY;
      const float m_new = fmaxf(row_max[r], warp_max(score));
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float correction = exp2f(row_max[r] - m_use);
      row_max[r] = m_new;
      row_sum[r] *= correction;
#pragma unroll
      for (int c = 0; c < kCols; ++c) acc[r][c] *= correction;
      s[r] = exp2f(score - m_use);  // now p
      row_sum[r] += s[r];
    }

    // acc[r][c] += sum over key slots jj of p[r, jj] v[jj, lane + 32c].
    for (int jj = 0; jj < SimtForwardConfig::kBlockN; ++jj) {
      float v_row[kCols];
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int col = lane + 32 * c;
        v_row[c] = col < dh ? s_v[jj * dh + col] : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float p = __shfl_sync(0xffffffffu, s[r], jj);
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[r][c] += p * v_row[c];
      }
    }
  }

  // Writes row r as query row first_row + r, if below row_end: out at out_head +
  // (first_row + r) * stride (columns lane + 32c), lse (natural log) at lse_head[first_row +
  // r]. A row that saw no key gets out = 0 and lse = -inf (the merge identity); under the
  // whole-sequence rule every query sees itself, so its sum is >= 1.
  template <typename T>
  __device__ __forceinline__ void store(T* out_head, std::int64_t stride, float* lse_head,
                                        int first_row, int row_end, int dh, int lane) const {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int i = first_row + r;
      const float sum = warp_sum(row_sum[r]);
      if (i >= row_end) continue;  // padding row (warp-uniform)
      const bool saw_keys = sum > 0.0f;
      const float inv = saw_keys ? 1.0f / sum : 0.0f;
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int col = lane + 32 * c;
        if (col < dh) out_head[i * stride + col] = from_float<T>(saw_keys ? acc[r][c] * inv : 0.0f);
      }
      if (lane == 0) lse_head[i] = saw_keys ? (row_max[r] + log2f(sum)) * kLn2 : -INFINITY;
    }
  }
};

// kCols: output columns per lane, dh <= 32 kCols.
template <typename T, int kCols>
__global__ void __launch_bounds__(SimtForwardConfig::kThreads)
    attention_forward_simt_kernel(ForwardArgs<T> args, TileOrder order) {
  using Cfg = SimtForwardConfig;
  constexpr int kRows = Cfg::kRowsPerWarp;
  const AttentionShape& shape = args.shape;
  const KeySets& keys = args.keys;
  const int dh = shape.dh, k_pitch = dh + 1;
  extern __shared__ float smem[];
  float* s_q = smem;                              // (kBlockM, dh)
  float* s_k = s_q + Cfg::kBlockM * dh;           // (kBlockN, dh + 1)
  float* s_v = s_k + Cfg::kBlockN * k_pitch;      // (kBlockN, dh)

  const TileOrder::Item item = order.at(blockIdx.x);
  const int bh = item.bh;
  const int q0 = (order.tiles - 1 - item.tile) * Cfg::kBlockM;  // the most keys first
  const int q1 = min(q0 + Cfg::kBlockM, shape.seq);
  const std::int64_t base = shape.head_base(bh), stride = shape.row_stride();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const QueryTilePlan plan = QueryTilePlan::of(keys, q0, q1, Cfg::kBlockN);

  for (int e = threadIdx.x; e < Cfg::kBlockM * dh; e += Cfg::kThreads) {
    const int r = e / dh, c = e % dh;
    s_q[e] = q0 + r < q1 ? to_float(args.q[base + (q0 + r) * stride + c]) : 0.0f;
  }

  SimtForwardRows<kCols> rows;
  for (int t = 0; t < plan.tiles; ++t) {
    const KeyTile tile = plan.tile(t, Cfg::kBlockN);
    __syncthreads();  // the previous tile's readers are done (and s_q is written)
    for (int e = threadIdx.x; e < Cfg::kBlockN * dh; e += Cfg::kThreads) {
      const int r = e / dh, c = e % dh;
      float kv = 0.0f, vv = 0.0f;
      if (r < tile.count) {
        const std::int64_t at = base + tile.key(keys, r) * stride + c;
        kv = to_float(args.k[at]);
        vv = to_float(args.v[at]);
      }
      s_k[r * k_pitch + c] = kv;
      s_v[e] = vv;
    }
    __syncthreads();

    const bool slot_valid = lane < tile.count;
    const int j = slot_valid ? tile.key(keys, lane) : 0;
    const int i_first = q0 + warp * kRows;
    rows.add_tile(s_q + warp * kRows * dh, s_k, s_v, dh, args.scale_log2, lane,
                  [&](int r) { return slot_valid && keys.visible(tile.local, i_first + r, j); });
  }
  rows.store(args.out + base, stride, args.lse + shape.stat_base(bh), q0 + warp * kRows, q1, dh, lane);
}

}  // namespace ratrain::cuda
