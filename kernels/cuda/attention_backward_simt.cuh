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
// Steps 1-3 (SimtKeyGradients::add_query_step) also serve attention over an explicit key
// set (attention_keys.cu), whose CTA differs in which keys it stages, how it masks them
// and that it adds to dk, dv.
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

// The shared memory of the SIMT backward, carved from the dynamic buffer (smem_bytes).
struct SimtBackwardSmem {
  float* k;      // (kBlockN, dh)
  float* v;      // (kBlockN, dh)
  float* q;      // (kBlockM, dh + 1)
  float* dout;   // (kBlockM, dh + 1)
  float* ds;     // (kBlockN, kBlockM + 1): ds^T of the step
  float* lse2;   // (kBlockM) lse log2(e)
  float* delta;  // (kBlockM)

  __device__ static SimtBackwardSmem carve(float* smem, int dh) {
    using Cfg = SimtBackwardConfig;
    const int q_pitch = dh + 1;
    SimtBackwardSmem s;
    s.k = smem;
    s.v = s.k + Cfg::kBlockN * dh;
    s.q = s.v + Cfg::kBlockN * dh;
    s.dout = s.q + Cfg::kBlockM * q_pitch;
    s.ds = s.dout + Cfg::kBlockM * q_pitch;
    s.lse2 = s.ds + Cfg::kBlockN * (Cfg::kBlockM + 1);
    s.delta = s.lse2 + Cfg::kBlockM;
    return s;
  }
};

// The query side of one (b, h) pair: row i of q, dout and dq_acc at + i * stride, its
// statistics at lse[i], delta[i], for rows i < seq.
template <typename T>
struct SimtQueryHead {
  const T* q;
  const T* dout;
  const float* lse;    // natural log
  const float* delta;  // dout_i . out_i
  float* dq_acc;       // fp32, accumulated with atomics
  std::int64_t stride;
  int seq;
};

// dk, dv of the kKeysPerWarp key slots of one warp (lane owns columns lane + 32c), summed
// over query steps, and the step itself (steps 1-3 above). kCols: columns per lane,
// dh <= 32 kCols.
template <int kCols>
struct SimtKeyGradients {
  static constexpr int kKeys = SimtBackwardConfig::kKeysPerWarp;
  float dk[kKeys][kCols] = {}, dv[kKeys][kCols] = {};

  // Adds the terms of query rows [q0, q0 + kBlockM) against the staged key tile (s.k,
  // s.v hold its `count` keys, zeros after). sees(r, i): whether query row i (< seq)
  // sees the key of the warp's slot r. Called by the whole CTA; begins with a barrier,
  // so the staged keys need none of their own.
  template <typename T, typename Sees>
  __device__ __forceinline__ void add_query_step(const SimtBackwardSmem& s, const SimtQueryHead<T>& head,
                                                 int q0, int count, int dh, float scale_log2,
                                                 float scale, int warp, int lane, const Sees& sees) {
    using Cfg = SimtBackwardConfig;
    constexpr int kDsPitch = Cfg::kBlockM + 1;
    const int q_pitch = dh + 1;
    __syncthreads();  // the previous step's readers are done (and s.k, s.v are written)
    for (int e = threadIdx.x; e < Cfg::kBlockM * dh; e += Cfg::kThreads) {
      const int r = e / dh, c = e % dh;
      const bool valid = q0 + r < head.seq;
      const std::int64_t at = (q0 + r) * head.stride + c;
      s.q[r * q_pitch + c] = valid ? to_float(head.q[at]) : 0.0f;
      s.dout[r * q_pitch + c] = valid ? to_float(head.dout[at]) : 0.0f;
    }
    if (threadIdx.x < Cfg::kBlockM) {
      const int i = q0 + threadIdx.x;
      s.lse2[threadIdx.x] = i < head.seq ? head.lse[i] * kLog2e : 0.0f;
      s.delta[threadIdx.x] = i < head.seq ? head.delta[i] : 0.0f;
    }
    __syncthreads();

    // Lane = query q0 + lane against the warp's keys.
    float sc[kKeys] = {}, dp[kKeys] = {};
    for (int c = 0; c < dh; ++c) {
      const float qc = s.q[lane * q_pitch + c], doc = s.dout[lane * q_pitch + c];
#pragma unroll
      for (int r = 0; r < kKeys; ++r) {
        sc[r] += s.k[(warp * kKeys + r) * dh + c] * qc;
        dp[r] += s.v[(warp * kKeys + r) * dh + c] * doc;
      }
    }
    const int i = q0 + lane;
    const float lse2 = s.lse2[lane], delta = s.delta[lane];
#pragma unroll
    for (int r = 0; r < kKeys; ++r) {
      const bool seen = i < head.seq && sees(r, i);
      const float p = seen ? exp2f(sc[r] * scale_log2 - lse2) : 0.0f;
      sc[r] = p;
      dp[r] = p * (dp[r] - delta);  // now ds
      s.ds[(warp * kKeys + r) * kDsPitch + lane] = dp[r];
    }

    // Lane = column: dv_j += sum_i p_ij do_i, dk_j += sum_i ds_ij q_i.
    for (int ii = 0; ii < Cfg::kBlockM; ++ii) {
      float do_row[kCols], q_row[kCols];
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int col = lane + 32 * c;
        do_row[c] = col < dh ? s.dout[ii * q_pitch + col] : 0.0f;
        q_row[c] = col < dh ? s.q[ii * q_pitch + col] : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < kKeys; ++r) {
        const float p = __shfl_sync(0xffffffffu, sc[r], ii);
        const float ds = __shfl_sync(0xffffffffu, dp[r], ii);
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          dv[r][c] += p * do_row[c];
          dk[r][c] += ds * q_row[c];
        }
      }
    }
    __syncthreads();  // s.ds complete

    // dq_i += scale sum_j ds_ij k_j for the warp's 8 queries.
    for (int r = 0; r < Cfg::kBlockM / Cfg::kWarps; ++r) {
      const int row = warp * (Cfg::kBlockM / Cfg::kWarps) + r;
      if (q0 + row >= head.seq) break;  // warp-uniform
      float sum[kCols] = {};
      for (int jj = 0; jj < count; ++jj) {
        const float ds = s.ds[jj * kDsPitch + row];
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          const int col = lane + 32 * c;
          if (col < dh) sum[c] += ds * s.k[jj * dh + col];
        }
      }
      float* dq_row = head.dq_acc + (q0 + row) * head.stride;
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int col = lane + 32 * c;
        if (col < dh) atomicAdd(dq_row + col, sum[c] * scale);
      }
    }
  }
};

// kCols: columns per lane, dh <= 32 kCols.
template <typename T, int kCols>
__global__ void __launch_bounds__(SimtBackwardConfig::kThreads)
    attention_backward_simt_kernel(BackwardArgs<T> args, TileOrder order) {
  using Cfg = SimtBackwardConfig;
  constexpr int kKeys = Cfg::kKeysPerWarp;
  const AttentionShape& shape = args.shape;
  const KeySets& keys = args.keys;
  const int dh = shape.dh;
  extern __shared__ float smem[];
  const SimtBackwardSmem s = SimtBackwardSmem::carve(smem, dh);

  const BackwardPlan plan = BackwardPlan::of(keys, Cfg::kBlockN);
  const TileOrder::Item item = order.at(blockIdx.x);
  const KeyTileWork work = plan.work(keys, item.tile, Cfg::kBlockN);
  if (work.empty()) return;  // CTA-uniform, before any barrier
  const KeyTile& tile = work.keys;
  const int bh = item.bh;
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
    s.k[e] = kv;
    s.v[e] = vv;
  }
  int key[kKeys];  // key of slot 8 warp + r, -1 past the tile's end
#pragma unroll
  for (int r = 0; r < kKeys; ++r) {
    const int slot = warp * kKeys + r;
    key[r] = slot < tile.count ? tile.key(keys, slot) : -1;
  }

  SimtKeyGradients<kCols> grads;
  const SimtQueryHead<T> head{args.q + base,    args.dout + base, args.lse + stat,
                              args.delta + stat, args.dq_acc + base, stride, shape.seq};
  const int m_end = (work.query_end + Cfg::kBlockM - 1) / Cfg::kBlockM;
  for (int m = work.query_first / Cfg::kBlockM; m < m_end; ++m)
    grads.add_query_step(s, head, m * Cfg::kBlockM, tile.count, dh, args.scale_log2, args.scale,
                         warp, lane, [&](int r, int i) {
                           return key[r] >= 0 && keys.visible(tile.local, i, key[r]);
                         });

  // Write the keys this CTA owns: all of a global tile, the non-global ones of a local.
#pragma unroll
  for (int r = 0; r < kKeys; ++r) {
    if (key[r] < 0 || (tile.local && keys.is_global(key[r]))) continue;
    const std::int64_t at = base + key[r] * stride;
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = lane + 32 * c;
      if (col >= dh) continue;
      args.dk[at + col] = from_float<T>(grads.dk[r][c] * args.scale);
      args.dv[at + col] = from_float<T>(grads.dv[r][c]);
    }
  }
}

}  // namespace ratrain::cuda
