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

// kCols: output columns per lane, dh <= 32 kCols.
template <typename T, int kCols>
__global__ void __launch_bounds__(SimtForwardConfig::kThreads)
    attention_forward_simt_kernel(ForwardArgs<T> args) {
  using Cfg = SimtForwardConfig;
  constexpr int kRows = Cfg::kRowsPerWarp;
  const AttentionShape& shape = args.shape;
  const KeySets& keys = args.keys;
  const int dh = shape.dh, k_pitch = dh + 1;
  extern __shared__ float smem[];
  float* s_q = smem;                              // (kBlockM, dh)
  float* s_k = s_q + Cfg::kBlockM * dh;           // (kBlockN, dh + 1)
  float* s_v = s_k + Cfg::kBlockN * k_pitch;      // (kBlockN, dh)

  const int bh = blockIdx.x;
  // The last query tiles see the most keys: schedule them first.
  const int q0 = (gridDim.y - 1 - blockIdx.y) * Cfg::kBlockM;
  const int q1 = min(q0 + Cfg::kBlockM, shape.seq);
  const std::int64_t base = shape.head_base(bh), stride = shape.row_stride();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const QueryTilePlan plan = QueryTilePlan::of(keys, q0, q1, Cfg::kBlockN);

  for (int e = threadIdx.x; e < Cfg::kBlockM * dh; e += Cfg::kThreads) {
    const int r = e / dh, c = e % dh;
    s_q[e] = q0 + r < q1 ? to_float(args.q[base + (q0 + r) * stride + c]) : 0.0f;
  }

  float acc[kRows][kCols] = {};
  float row_max[kRows], row_sum[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    row_max[r] = -INFINITY;
    row_sum[r] = 0.0f;
  }

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

    // Scores of the warp's rows against key slot `lane`.
    float s[kRows] = {};
    for (int c = 0; c < dh; ++c) {
      const float kc = s_k[lane * k_pitch + c];
#pragma unroll
      for (int r = 0; r < kRows; ++r) s[r] += s_q[(warp * kRows + r) * dh + c] * kc;
    }
    const bool slot_valid = lane < tile.count;
    const int j = slot_valid ? tile.key(keys, lane) : 0;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int i = q0 + warp * kRows + r;
      const float score =
          slot_valid && keys.visible(tile.local, i, j) ? s[r] * args.scale_log2 : -INFINITY;
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
    for (int jj = 0; jj < Cfg::kBlockN; ++jj) {
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

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int i = q0 + warp * kRows + r;
    const float sum = warp_sum(row_sum[r]);
    if (i >= q1) continue;  // padding row (warp-uniform)
    const float inv = 1.0f / sum;  // sum >= 1: every query sees itself
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = lane + 32 * c;
      if (col < dh) args.out[base + i * stride + col] = from_float<T>(acc[r][c] * inv);
    }
    if (lane == 0) args.lse[shape.stat_base(bh) + i] = (row_max[r] + log2f(sum)) * kLn2;
  }
}

}  // namespace ratrain::cuda
