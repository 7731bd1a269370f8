// Attention backward on bf16 mma.sync tensor cores (dh = kD; launched for 64, dh 128 has
// the wgmma kernel), key-major (FlashAttention-2 partitioning; tiles as in
// attention_rule.cuh).
//
// A CTA owns one key tile of kBlockN = 64 keys (BackwardPlan: compact global tiles,
// heaviest first, then contiguous local tiles). K and V stay in shared memory; each
// warp also keeps the K and V A-fragments of its 16 key rows in registers. The CTA walks
// the query range that sees its keys in steps of kBlockM = 64 queries, Q and dO
// double-buffered with cp.async. Per step, 8 warps in three phases (barriers between):
//   1. warp (kg = w % 4, qh = w / 4): keys 16kg.., queries 32qh..:
//        S^T = K Q^T, dP^T = V dO^T                      (16 x 32 each, fp32)
//        P^T = 2^(S^T log2(e)/sqrt(dh) - lse log2(e)), 0 where masked
//        dS^T = P^T (dP^T - delta)
//      P^T and dS^T go to shared memory rounded to bf16 (64 x 64 each).
//   2. warp (kg, dh half w / 4): dV += P^T dO, dK += dS^T Q   (16 x kD/2 fp32 each)
//   3. warp (query group w % 4, dh half w / 4): dQ = dS K (16 x kD/2), added to the fp32
//      dq accumulator with float2 atomics (not bitwise deterministic: several key tiles
//      meet in one dq row in a varying order).
// At the end dK (times 1/sqrt(dh)) and dV go out as bf16 for the keys the CTA owns.
// Rounding P and dS to bf16 before the products is where the bf16 path loses accuracy
// (relative ~2^-9 per term).
#pragma once

#include "kernels/cuda/attention_backward_tile.cuh"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_mma.cuh"

namespace ratrain::cuda {

template <int kD>
struct MmaBackwardConfig {
  static constexpr int kWarps = 8;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockN = 64;  // keys per CTA: 4 groups of 16
  static constexpr int kBlockM = 64;  // queries per step: 2 halves of 32 (phase 1), 4 groups of 16 (phase 3)
  static constexpr int kStages = 2;   // Q/dO buffers
  static constexpr std::size_t kSmemBytes =
      sizeof(__nv_bfloat16) * (2 * kBlockN * kD + 2 * kStages * kBlockM * kD + 2 * kBlockN * kBlockM) +
      sizeof(float) * 2 * kStages * kBlockM;  // K, V; Q, dO; P^T, dS^T; lse, delta
};

template <int kD>
__global__ void __launch_bounds__(MmaBackwardConfig<kD>::kThreads, 1)
    attention_backward_mma_kernel(BackwardArgs<__nv_bfloat16> args, TileOrder order) {
  using Cfg = MmaBackwardConfig<kD>;
  using mma::bf16;
  static_assert(Cfg::kWarps == 8 && Cfg::kBlockN == 64 && Cfg::kBlockM == 64,
                "the warp roles below assume 8 warps on 64 keys x 64 queries");
  constexpr int kKSteps = kD / 16;        // k16 steps over dh (phase 1)
  constexpr int kHalfTiles = kD / 16;     // n8 tiles of a dh half (phases 2, 3)
  constexpr int kHalfChunks = kD / 16;    // 16-byte chunks of a dh half
  constexpr int kStepElems = Cfg::kBlockM * kD;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* s_k = reinterpret_cast<bf16*>(smem_raw);      // (kBlockN, kD) swizzled
  bf16* s_v = s_k + Cfg::kBlockN * kD;                // (kBlockN, kD) swizzled
  bf16* s_q = s_v + Cfg::kBlockN * kD;                // (kStages, kBlockM, kD) swizzled
  bf16* s_do = s_q + Cfg::kStages * kStepElems;       // (kStages, kBlockM, kD) swizzled
  bf16* s_pt = s_do + Cfg::kStages * kStepElems;      // (kBlockN, kBlockM) swizzled: P^T
  bf16* s_dst = s_pt + Cfg::kBlockN * Cfg::kBlockM;   // (kBlockN, kBlockM) swizzled: dS^T
  auto* s_lse = reinterpret_cast<float*>(s_dst + Cfg::kBlockN * Cfg::kBlockM);  // (kStages, kBlockM)
  float* s_delta = s_lse + Cfg::kStages * Cfg::kBlockM;                          // (kStages, kBlockM)

  const AttentionShape& shape = args.shape;
  const KeySets& keys = args.keys;
  const BackwardPlan plan = BackwardPlan::of(keys, Cfg::kBlockN);
  const TileOrder::Item item = order.at(blockIdx.x);
  const KeyTileWork work = plan.work(keys, item.tile, Cfg::kBlockN);
  if (work.empty()) return;  // CTA-uniform, before any barrier
  const KeyTile& tile = work.keys;
  const int bh = item.bh;
  const std::int64_t base = shape.head_base(bh), stride = shape.row_stride();
  const float* lse = args.lse + shape.stat_base(bh);
  const float* delta = args.delta + shape.stat_base(bh);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = warp % 4;  // 16 key rows (phases 1, 2) or 16 query rows (phase 3)
  const int half = warp / 4;   // 32 queries (phase 1) or kD/2 columns (phases 2, 3)
  const int col_in_tile = 2 * (lane % 4);

  const int m_first = work.query_first / Cfg::kBlockM;
  const int steps = (work.query_end + Cfg::kBlockM - 1) / Cfg::kBlockM - m_first;
  auto load_step = [&](int step, int stage) {
    const int q0 = (m_first + step) * Cfg::kBlockM;
    auto source = [&](int r) { return q0 + r < shape.seq ? q0 + r : -1; };
    mma::copy_rows_async<kD, Cfg::kBlockM, Cfg::kThreads>(s_q + stage * kStepElems, args.q + base, stride, source);
    mma::copy_rows_async<kD, Cfg::kBlockM, Cfg::kThreads>(s_do + stage * kStepElems, args.dout + base, stride, source);
    copy_stats_async<Cfg::kBlockM>(s_lse + stage * Cfg::kBlockM, s_delta + stage * Cfg::kBlockM, lse,
                                   delta, q0, shape.seq);
  };
  {
    auto source = [&](int r) { return r < tile.count ? tile.key(keys, r) : -1; };
    mma::copy_rows_async<kD, Cfg::kBlockN, Cfg::kThreads>(s_k, args.k + base, stride, source);
    mma::copy_rows_async<kD, Cfg::kBlockN, Cfg::kThreads>(s_v, args.v + base, stride, source);
  }
  load_step(0, 0);
  mma::cp_async_commit();

  const LaneKeys rows(tile, keys, 16 * group + lane / 4);
  const bool always_masked = tile.local || tile.count < Cfg::kBlockN;  // masks beyond j <= i
  const int last_key = tile.last_key(keys);

  unsigned k_frag[kKSteps][4], v_frag[kKSteps][4];
  float dk[kHalfTiles][4] = {}, dv[kHalfTiles][4] = {};

  for (int step = 0; step < steps; ++step) {
    const int stage = step % Cfg::kStages;
    const int q0 = (m_first + step) * Cfg::kBlockM;
    __syncthreads();  // the previous step's readers of s_pt, s_dst and stage ^ 1 are done
    if (step + 1 < steps) load_step(step + 1, stage ^ 1);
    mma::cp_async_commit();
    mma::cp_async_wait<1>();
    __syncthreads();
    if (step == 0) {
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        mma::load_a<kD>(k_frag[kk], s_k, 16 * group, 2 * kk, lane);
        mma::load_a<kD>(v_frag[kk], s_v, 16 * group, 2 * kk, lane);
      }
    }
    const bf16* q_tile = s_q + stage * kStepElems;
    const bf16* do_tile = s_do + stage * kStepElems;

    // ---- phase 1: keys 16 group.., queries q0 + 32 half + [0, 32) ----
    float st[4][4] = {}, dpt[4][4] = {};
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
      for (int np = 0; np < 2; ++np) {
        unsigned b[4];
        mma::load_b<kD>(b, q_tile, 32 * half + 16 * np, 2 * kk, lane);
        mma::mma_16816(st[2 * np], k_frag[kk], b[0], b[1]);
        mma::mma_16816(st[2 * np + 1], k_frag[kk], b[2], b[3]);
        mma::load_b<kD>(b, do_tile, 32 * half + 16 * np, 2 * kk, lane);
        mma::mma_16816(dpt[2 * np], v_frag[kk], b[0], b[1]);
        mma::mma_16816(dpt[2 * np + 1], v_frag[kk], b[2], b[3]);
      }
    }
    const bool masked = always_masked || q0 + Cfg::kBlockM > shape.seq || last_key > q0;
    probabilities_and_ds(st, dpt, rows, q0 + 32 * half + col_in_tile, masked, tile, keys,
                         s_lse + stage * Cfg::kBlockM, s_delta + stage * Cfg::kBlockM, q0,
                         args.scale_log2);
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = 16 * group + lane / 4 + 8 * h;
        const int at = mma::swizzled<Cfg::kBlockM>(row, 4 * half + nt) + col_in_tile;
        *reinterpret_cast<unsigned*>(s_pt + at) = mma::pack_bf16(st[nt][2 * h], st[nt][2 * h + 1]);
        *reinterpret_cast<unsigned*>(s_dst + at) = mma::pack_bf16(dpt[nt][2 * h], dpt[nt][2 * h + 1]);
      }
    }
    __syncthreads();

    // ---- phase 2: keys 16 group.., columns half * kD/2.. ----
#pragma unroll
    for (int kk = 0; kk < Cfg::kBlockM / 16; ++kk) {
      unsigned p_frag[4], ds_frag[4];
      mma::load_a<Cfg::kBlockM>(p_frag, s_pt, 16 * group, 2 * kk, lane);
      mma::load_a<Cfg::kBlockM>(ds_frag, s_dst, 16 * group, 2 * kk, lane);
#pragma unroll
      for (int np = 0; np < kHalfTiles / 2; ++np) {
        unsigned b[4];
        const int chunk = half * kHalfChunks + 2 * np;
        mma::load_b_transposed<kD>(b, do_tile, 16 * kk, chunk, lane);
        mma::mma_16816(dv[2 * np], p_frag, b[0], b[1]);
        mma::mma_16816(dv[2 * np + 1], p_frag, b[2], b[3]);
        mma::load_b_transposed<kD>(b, q_tile, 16 * kk, chunk, lane);
        mma::mma_16816(dk[2 * np], ds_frag, b[0], b[1]);
        mma::mma_16816(dk[2 * np + 1], ds_frag, b[2], b[3]);
      }
    }

    // ---- phase 3: queries q0 + 16 group.., columns half * kD/2.. ----
    float dq[kHalfTiles][4] = {};
#pragma unroll
    for (int kk = 0; kk < Cfg::kBlockN / 16; ++kk) {
      unsigned ds_frag[4];  // dS (queries x keys) read from dS^T
      mma::load_a_transposed<Cfg::kBlockM>(ds_frag, s_dst, 16 * kk, 2 * group, lane);
#pragma unroll
      for (int np = 0; np < kHalfTiles / 2; ++np) {
        unsigned b[4];
        mma::load_b_transposed<kD>(b, s_k, 16 * kk, half * kHalfChunks + 2 * np, lane);
        mma::mma_16816(dq[2 * np], ds_frag, b[0], b[1]);
        mma::mma_16816(dq[2 * np + 1], ds_frag, b[2], b[3]);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int i = q0 + 16 * group + lane / 4 + 8 * h;
      if (i >= shape.seq) continue;
      float* dq_row = args.dq_acc + base + i * stride + half * (kD / 2) + col_in_tile;
#pragma unroll
      for (int nt = 0; nt < kHalfTiles; ++nt)
        atomicAdd(reinterpret_cast<float2*>(dq_row + 8 * nt),
                  make_float2(dq[nt][2 * h] * args.scale, dq[nt][2 * h + 1] * args.scale));
    }
  }

  store_key_gradients(dk, dv, rows, tile.local, keys, args.dk + base, args.dv + base, stride,
                      half * (kD / 2) + col_in_tile, args.scale);
}

}  // namespace ratrain::cuda
