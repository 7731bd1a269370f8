// Attention forward on bf16 mma.sync tensor cores (dh = kD; launched for 64, dh 128 has
// the wgmma kernel), FlashAttention-2 partitioning.
//
// A CTA owns kBlockM = 128 queries of one (b, h) pair (the latest query tiles, which
// see the most keys, are scheduled first); each of its 8 warps owns 16 query rows and
// keeps their Q fragments (kD/16 k16 steps), the output accumulator (16 x kD fp32) and
// the softmax statistics in registers. K and V tiles of kBlockN = 64 keys come from
// QueryTilePlan (local tiles, then compact global tiles read by stride) through a
// cp.async double buffer, so tile t+1 loads while tile t is computed:
//   S = Q K^T (mma, fp32)            16 x 64 per warp, 8 n8 tiles
//   mask (local tiles, partial tiles and tiles reaching past the first query only) and
//   online softmax (attention_softmax.cuh)
//   O = O 2^(m_old - m_new) + P V    P rounded to bf16 in registers (accumulators_to_a)
// At the end O / l goes out as bf16 and lse as f32. The sum l adds
// the fp32 probabilities, P V uses their bf16 roundings (as FlashAttention does).
#pragma once

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_mma.cuh"
#include "kernels/cuda/attention_softmax.cuh"

namespace ratrain::cuda {

template <int kD>
struct MmaForwardConfig {
  static constexpr int kWarps = 8;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kBlockM = 16 * kWarps;  // 128 queries: 16 rows per warp
  static constexpr int kBlockN = 64;           // keys per tile
  static constexpr int kStages = 2;            // K/V buffers
  static constexpr std::size_t kSmemBytes =
      sizeof(__nv_bfloat16) * (kBlockM + 2 * kStages * kBlockN) * kD;  // Q + K, V stages
};

template <int kD>
__global__ void __launch_bounds__(MmaForwardConfig<kD>::kThreads, 1)
    attention_forward_mma_kernel(ForwardArgs<__nv_bfloat16> args, TileOrder order) {
  using Cfg = MmaForwardConfig<kD>;
  using mma::bf16;
  constexpr int kKSteps = kD / 16;            // k16 steps of Q K^T
  constexpr int kScoreTiles = Cfg::kBlockN / 8;  // n8 tiles of S
  constexpr int kOutTiles = kD / 8;           // n8 tiles of O
  constexpr int kKvElems = Cfg::kBlockN * kD;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* s_q = reinterpret_cast<bf16*>(smem_raw);  // (kBlockM, kD) swizzled
  bf16* s_k = s_q + Cfg::kBlockM * kD;            // (kStages, kBlockN, kD) swizzled
  bf16* s_v = s_k + Cfg::kStages * kKvElems;      // (kStages, kBlockN, kD) swizzled

  const AttentionShape& shape = args.shape;
  const KeySets& keys = args.keys;
  const TileOrder::Item item = order.at(blockIdx.x);
  const int bh = item.bh;
  const int q0 = (order.tiles - 1 - item.tile) * Cfg::kBlockM;  // the most keys first
  const int q1 = min(q0 + Cfg::kBlockM, shape.seq);
  const std::int64_t base = shape.head_base(bh), stride = shape.row_stride();
  const bf16* q_head = args.q + base;
  const bf16* k_head = args.k + base;
  const bf16* v_head = args.v + base;
  const QueryTilePlan plan = QueryTilePlan::of(keys, q0, q1, Cfg::kBlockN);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  auto load_keys = [&](int t, int stage) {
    const KeyTile tile = plan.tile(t, Cfg::kBlockN);
    auto source = [&](int r) { return r < tile.count ? tile.key(keys, r) : -1; };
    mma::copy_rows_async<kD, Cfg::kBlockN, Cfg::kThreads>(s_k + stage * kKvElems, k_head, stride, source);
    mma::copy_rows_async<kD, Cfg::kBlockN, Cfg::kThreads>(s_v + stage * kKvElems, v_head, stride, source);
  };
  mma::copy_rows_async<kD, Cfg::kBlockM, Cfg::kThreads>(
      s_q, q_head, stride, [&](int r) { return q0 + r < q1 ? q0 + r : -1; });
  load_keys(0, 0);  // plan.tiles >= 1: every query sees itself
  mma::cp_async_commit();

  unsigned q_frag[kKSteps][4];
  float o[kOutTiles][4] = {};
  OnlineSoftmax<kScoreTiles, kOutTiles> softmax(q0 + warp * 16 + lane / 4, lane);

  for (int t = 0; t < plan.tiles; ++t) {
    const int stage = t % Cfg::kStages;
    if (t + 1 < plan.tiles) load_keys(t + 1, stage ^ 1);
    mma::cp_async_commit();  // possibly empty: keeps "all but the newest group" = tile t
    mma::cp_async_wait<1>();
    __syncthreads();
    if (t == 0) {
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) mma::load_a<kD>(q_frag[kk], s_q, warp * 16, 2 * kk, lane);
    }
    const bf16* k_tile = s_k + stage * kKvElems;
    const bf16* v_tile = s_v + stage * kKvElems;

    float s[kScoreTiles][4] = {};
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
      for (int np = 0; np < kScoreTiles / 2; ++np) {
        unsigned b[4];
        mma::load_b<kD>(b, k_tile, 16 * np, 2 * kk, lane);
        mma::mma_16816(s[2 * np], q_frag[kk], b[0], b[1]);
        mma::mma_16816(s[2 * np + 1], q_frag[kk], b[2], b[3]);
      }
    }

    const KeyTile tile = plan.tile(t, Cfg::kBlockN);
    softmax.mask(s, tile.local || tile.count < Cfg::kBlockN || tile.last_key(keys) > q0,
                 tile, keys);
    softmax.rescale(o, softmax.update(s, args.scale_log2));

    // O += P V: P (16 x 64) as 4 A fragments, V (64 x kD) row-major = (k x n).
#pragma unroll
    for (int kk = 0; kk < Cfg::kBlockN / 16; ++kk) {
      unsigned p_frag[4];
      mma::accumulators_to_a(p_frag, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int np = 0; np < kOutTiles / 2; ++np) {
        unsigned b[4];
        mma::load_b_transposed<kD>(b, v_tile, 16 * kk, 2 * np, lane);
        mma::mma_16816(o[2 * np], p_frag, b[0], b[1]);
        mma::mma_16816(o[2 * np + 1], p_frag, b[2], b[3]);
      }
    }
    __syncthreads();  // stage is reloaded by the next iteration's prefetch
  }

  softmax.store(o, args.out + base, stride, args.lse + shape.stat_base(bh), q1, lane,
                args.scale_log2);
}

}  // namespace ratrain::cuda
