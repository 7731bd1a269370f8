// Attention backward on CUDA cores (any even dh <= 256, f32 or bf16 storage, fp32
// arithmetic), key-major as described in attention_rule.cuh.
//
// A CTA owns one key tile of kBlockN = 32 keys (BackwardPlan); warp w owns key slots
// 8w..8w+7 and keeps their dk, dv rows in registers (lane owns columns lane + 32c). It
// walks the query tiles [query_first, query_end) in steps of kBlockM = 32 queries:
//   1. stage Q, dO (fp32, row pitch dh + 1 so that lane i reading row i is
//      conflict-free), lse in base 2 and delta of the 32 queries;
//   2. lane = query i: s = k_j . q_i, dp = v_j . do_i, p = 2^(s log2(e)/sqrt(dh) -
//      lse_i log2(e)) (0 where masked), ds = p (dp - delta_i); then lane = column c:
//      dv_j += sum_i p_ij do_i, dk_j += sum_i ds_ij q_i (p, ds broadcast by shuffles);
//      ds goes to shared memory;
//   3. warp w takes queries 8w..8w+7, lane = column: dq_i += scale sum_j ds_ij k_j,
//      added to the fp32 dq accumulator with atomics (several key tiles meet in one
//      dq row; their order varies, so dq is not bitwise deterministic).
// dk is scaled by 1/sqrt(dh) once, when written.
#pragma once

#include "kernels/cuda/attention_common.cuh"

namespace ratrain::cuda {

struct SimtBackwardConfig {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kKeysPerWarp = 8;
  static constexpr int kBlockN = kWarps * kKeysPerWarp;  // 32 keys per CTA
  static constexpr int kBlockM = 32;                     // queries per step: one per lane
  static std::size_t smem_bytes(int dh) {
    return sizeof(float) * (2 * std::size_t{kBlockN} * dh + 2 * std::size_t{kBlockM} * (dh + 1) +
                            std::size_t{kBlockN} * (kBlockM + 1) + 2 * kBlockM);
  }
};

// kCols: columns per lane, dh <= 32 kCols.
template <typename T, int kCols>
__global__ void __launch_bounds__(SimtBackwardConfig::kThreads)
    attention_backward_simt_kernel(BackwardArgs<T> args) {
  using Cfg = SimtBackwardConfig;
  constexpr int kKeys = Cfg::kKeysPerWarp;
  constexpr int kDsPitch = Cfg::kBlockM + 1;
  const AttentionShape& shape = args.shape;
  const KeySets& keys = args.keys;
  const int dh = shape.dh, q_pitch = dh + 1;
  extern __shared__ float smem[];
  float* s_k = smem;                            // (kBlockN, dh)
  float* s_v = s_k + Cfg::kBlockN * dh;         // (kBlockN, dh)
  float* s_q = s_v + Cfg::kBlockN * dh;         // (kBlockM, dh + 1)
  float* s_do = s_q + Cfg::kBlockM * q_pitch;   // (kBlockM, dh + 1)
  float* s_ds = s_do + Cfg::kBlockM * q_pitch;  // (kBlockN, kBlockM + 1): ds^T of the step
  float* s_lse2 = s_ds + Cfg::kBlockN * kDsPitch;  // (kBlockM) lse log2(e)
  float* s_delta = s_lse2 + Cfg::kBlockM;           // (kBlockM)

  const BackwardPlan plan = BackwardPlan::of(keys, Cfg::kBlockN);
  const KeyTileWork work = plan.work(keys, blockIdx.y, Cfg::kBlockN);
  if (work.empty()) return;  // CTA-uniform, before any barrier
  const KeyTile& tile = work.keys;
  const int bh = blockIdx.x;
  const std::int64_t base = shape.head_base(bh), stride = shape.row_stride();
  const std::int64_t stat = shape.stat_base(bh);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  for (int e = threadIdx.x; e < Cfg::kBlockN * dh; e += Cfg::kThreads) {
    const int r = e / dh, c = e % dh;
    float kv = 0.0f, vv = 0.0f;
    if (r < tile.count) {
      const std::int64_t at = base + tile.key(keys, r) * stride + c;
      kv = to_float(args.k[at]);
      vv = to_float(args.v[at]);
    }
    s_k[e] = kv;
    s_v[e] = vv;
  }
  int key[kKeys];  // key of slot 8 warp + r, -1 past the tile's end
#pragma unroll
  for (int r = 0; r < kKeys; ++r) {
    const int slot = warp * kKeys + r;
    key[r] = slot < tile.count ? tile.key(keys, slot) : -1;
  }

  float dk[kKeys][kCols] = {}, dv[kKeys][kCols] = {};
  const int m_end = (work.query_end + Cfg::kBlockM - 1) / Cfg::kBlockM;
  for (int m = work.query_first / Cfg::kBlockM; m < m_end; ++m) {
    const int q0 = m * Cfg::kBlockM;
    __syncthreads();  // the previous step's readers are done (and s_k, s_v are written)
    for (int e = threadIdx.x; e < Cfg::kBlockM * dh; e += Cfg::kThreads) {
      const int r = e / dh, c = e % dh;
      const bool valid = q0 + r < shape.seq;
      const std::int64_t at = base + (q0 + r) * stride + c;
      s_q[r * q_pitch + c] = valid ? to_float(args.q[at]) : 0.0f;
      s_do[r * q_pitch + c] = valid ? to_float(args.dout[at]) : 0.0f;
    }
    if (threadIdx.x < Cfg::kBlockM) {
      const int i = q0 + threadIdx.x;
      s_lse2[threadIdx.x] = i < shape.seq ? args.lse[stat + i] * kLog2e : 0.0f;
      s_delta[threadIdx.x] = i < shape.seq ? args.delta[stat + i] : 0.0f;
    }
    __syncthreads();

    // Lane = query q0 + lane against the warp's keys.
    float s[kKeys] = {}, dp[kKeys] = {};
    for (int c = 0; c < dh; ++c) {
      const float qc = s_q[lane * q_pitch + c], doc = s_do[lane * q_pitch + c];
#pragma unroll
      for (int r = 0; r < kKeys; ++r) {
        s[r] += s_k[(warp * kKeys + r) * dh + c] * qc;
        dp[r] += s_v[(warp * kKeys + r) * dh + c] * doc;
      }
    }
    const int i = q0 + lane;
    const float lse2 = s_lse2[lane], delta = s_delta[lane];
#pragma unroll
    for (int r = 0; r < kKeys; ++r) {
      const bool seen = key[r] >= 0 && i < shape.seq && keys.visible(tile.local, i, key[r]);
      const float p = seen ? exp2f(s[r] * args.scale_log2 - lse2) : 0.0f;
      s[r] = p;
      dp[r] = p * (dp[r] - delta);  // now ds
      s_ds[(warp * kKeys + r) * kDsPitch + lane] = dp[r];
    }

    // Lane = column: dv_j += sum_i p_ij do_i, dk_j += sum_i ds_ij q_i.
    for (int ii = 0; ii < Cfg::kBlockM; ++ii) {
      float do_row[kCols], q_row[kCols];
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int col = lane + 32 * c;
        do_row[c] = col < dh ? s_do[ii * q_pitch + col] : 0.0f;
        q_row[c] = col < dh ? s_q[ii * q_pitch + col] : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < kKeys; ++r) {
        const float p = __shfl_sync(0xffffffffu, s[r], ii);
        const float ds = __shfl_sync(0xffffffffu, dp[r], ii);
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          dv[r][c] += p * do_row[c];
          dk[r][c] += ds * q_row[c];
        }
      }
    }
    __syncthreads();  // s_ds complete

    // dq_i += scale sum_j ds_ij k_j for the warp's 8 queries.
    for (int r = 0; r < Cfg::kBlockM / Cfg::kWarps; ++r) {
      const int row = warp * (Cfg::kBlockM / Cfg::kWarps) + r;
      if (q0 + row >= shape.seq) break;  // warp-uniform
      float sum[kCols] = {};
      for (int jj = 0; jj < tile.count; ++jj) {
        const float ds = s_ds[jj * kDsPitch + row];
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          const int col = lane + 32 * c;
          if (col < dh) sum[c] += ds * s_k[jj * dh + col];
        }
      }
      float* dq_row = args.dq_acc + base + (q0 + row) * stride;
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int col = lane + 32 * c;
        if (col < dh) atomicAdd(dq_row + col, sum[c] * args.scale);
      }
    }
  }

  // Write the keys this CTA owns: all of a global tile, the non-global ones of a local.
#pragma unroll
  for (int r = 0; r < kKeys; ++r) {
    if (key[r] < 0 || (tile.local && keys.is_global(key[r]))) continue;
    const std::int64_t at = base + key[r] * stride;
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = lane + 32 * c;
      if (col >= dh) continue;
      args.dk[at + col] = from_float<T>(dk[r][c] * args.scale);
      args.dv[at + col] = from_float<T>(dv[r][c]);
    }
  }
}

}  // namespace ratrain::cuda
