// Attention forward on Hopper warpgroup MMA (wgmma, sm_90a) for bf16 and dh = 128,
// warp-specialised as FlashAttention-3.
//
// A CTA owns kBlockM = 128 queries of one (b, h) pair (the latest query tiles, which see
// the most keys, first) and runs three warpgroups:
//   producer    one thread loads Q once and then the K and V tiles of kBlockN = 128
//               keys from QueryTilePlan (local and prefix tiles by consecutive
//               positions, chunk-end tiles by stride; attention_rule.cuh) into a
//               3-stage ring with TMA (tma.cuh): four boxes per stage, whose bytes
//               complete the stage's "full" mbarrier; the stage is refilled once its
//               "empty" mbarrier says both consumers are done with it
//               (warp_specialization.cuh). The warpgroup gives its registers to the
//               consumers (setmaxnreg).
//   consumer w  owns queries 64w..64w+63 (its warps 16 rows each). Per tile:
//                 S = Q K^T       8 x m64n128k16, Q and K from shared memory (K-major)
//                 mask and online softmax in registers (attention_softmax.cuh) -> P
//                 O += P V        8 x m64n128k16, P from registers, V MN-major
//               Iteration t issues S_t and then O += P_{t-1} V_{t-1}, and runs the
//               softmax of S_t while the second product is in flight; O is rescaled
//               for tile t once it has landed (FlashAttention-3's intra-warpgroup
//               overlap).
// The two consumers take turns to issue their products (named barriers 1 and 2,
// "ping-pong"), so that one's softmax runs while the tensor cores work on the other's
// products. No CTA-wide barrier inside the loop.
// Registers per consumer thread: O and S 64 floats each, P (of tile t-1) 32.
// At the end O / l goes out as bf16 and lse as f32.
#pragma once

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_softmax.cuh"
#include "kernels/cuda/tma.cuh"
#include "kernels/cuda/warp_specialization.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace ratrain::cuda {

struct WgmmaForwardConfig {
  static constexpr int kD = 128;
  static constexpr int kConsumers = 2;                       // warpgroups of 64 queries
  static constexpr int kThreads = 128 * (1 + kConsumers);    // + the producer warpgroup
  static constexpr int kBlockM = 64 * kConsumers;            // queries per CTA
  static constexpr int kBlockN = 128;                        // keys per tile
  static constexpr int kStages = 3;                          // K/V buffers
  static constexpr int kProducerRegisters = 32, kConsumerRegisters = 232;
  static_assert(128 * (kProducerRegisters + kConsumers * kConsumerRegisters) <= 65536);
  static constexpr std::size_t kSmemBytes =
      sizeof(__nv_bfloat16) * (kBlockM + 2 * kStages * kBlockN) * kD + wgmma::kGroupBytes +
      sizeof(std::uint64_t) * (2 * kStages + 1);  // tiles, alignment, mbarriers
};

// The tensor maps the producer loads through (tma.cuh), boxes of 128 rows: q, k and v
// by consecutive positions, and k and v by chunk ends (left empty when the rule has none).
struct ForwardTileMaps {
  CUtensorMap q, k, v, k_ends, v_ends;
};

__global__ void __launch_bounds__(WgmmaForwardConfig::kThreads, 1)
    attention_forward_wgmma_kernel(ForwardArgs<__nv_bfloat16> args,
                                   const __grid_constant__ ForwardTileMaps maps, TileOrder order) {
  using Cfg = WgmmaForwardConfig;
  using mma::bf16;
  constexpr int kD = Cfg::kD;
  constexpr int kKSteps = kD / 16;                  // k16 steps of Q K^T
  constexpr int kPvSteps = Cfg::kBlockN / 16;       // k16 steps of P V
  constexpr int kScoreTiles = Cfg::kBlockN / 8;     // n8 tiles of S
  constexpr int kOutTiles = kD / 8;                 // n8 tiles of O
  constexpr int kKvElems = Cfg::kBlockN * kD;
  constexpr int kConsumerThreads = 128 * Cfg::kConsumers;

  extern __shared__ unsigned char smem_raw[];
  bf16* s_q = wgmma::aligned_tiles(smem_raw);  // (kBlockM, kD) wgmma tile
  bf16* s_k = s_q + Cfg::kBlockM * kD;         // (kStages, kBlockN, kD) wgmma tiles
  bf16* s_v = s_k + Cfg::kStages * kKvElems;   // (kStages, kBlockN, kD) wgmma tiles
  auto* full = reinterpret_cast<std::uint64_t*>(s_v + Cfg::kStages * kKvElems);  // (kStages)
  std::uint64_t* empty = full + Cfg::kStages;                                     // (kStages)
  std::uint64_t* q_full = empty + Cfg::kStages;

  const AttentionShape& shape = args.shape;
  const KeySets& keys = args.keys;
  const TileOrder::Item item = order.at(blockIdx.x);
  const int bh = item.bh;
  const int q0 = (order.tiles - 1 - item.tile) * Cfg::kBlockM;  // the most keys first
  const int q1 = min(q0 + Cfg::kBlockM, shape.seq);
  const std::int64_t base = shape.head_base(bh), stride = shape.row_stride();
  const QueryTilePlan plan = QueryTilePlan::of(keys, q0, q1, Cfg::kBlockN);  // tiles >= 1: a query sees itself
  const int warpgroup = threadIdx.x / 128;

  if (threadIdx.x == 0) {
    for (int s = 0; s < Cfg::kStages; ++s) {
      ws::mbarrier_init(&full[s], 1);  // the producer's arrival; then the loads' bytes
      ws::mbarrier_init(&empty[s], kConsumerThreads);
    }
    ws::mbarrier_init(q_full, 1);
  }
  __syncthreads();

  if (warpgroup == 0) {  // producer: one thread issues every load
    ws::shrink_registers<Cfg::kProducerRegisters>();
    if (threadIdx.x != 0) return;
    const int b = bh / shape.heads, h = bh % shape.heads;
    constexpr unsigned kKvBytes = kKvElems * sizeof(bf16);
    tma::arrive_expect_bytes(q_full, Cfg::kBlockM * kD * sizeof(bf16));
    tma::load_rows_tile<Cfg::kBlockM>(s_q, &maps.q, q_full, q0, h, b);
    for (int t = 0; t < plan.tiles; ++t) {
      const int stage = t % Cfg::kStages;
      if (t >= Cfg::kStages) ws::mbarrier_wait(&empty[stage], (t / Cfg::kStages - 1) % 2);
      const KeyTile tile = plan.tile(t, Cfg::kBlockN);
      bf16* k_tile = s_k + stage * kKvElems;
      bf16* v_tile = s_v + stage * kKvElems;
      tma::arrive_expect_bytes(&full[stage], 2 * kKvBytes);
      const int first = tile.key(keys, 0);
      if (tile.local || tile.first < keys.prefix) {  // consecutive positions
        tma::load_rows_tile<Cfg::kBlockN>(k_tile, &maps.k, &full[stage], first, h, b);
        tma::load_rows_tile<Cfg::kBlockN>(v_tile, &maps.v, &full[stage], first, h, b);
      } else {  // chunk ends: position c*D + D - 1 of chunk c
        const int chunk = (first + 1) / keys.stride - 1;
        tma::load_chunk_ends_tile<Cfg::kBlockN>(k_tile, &maps.k_ends, &full[stage], keys.stride,
                                                chunk, h, b);
        tma::load_chunk_ends_tile<Cfg::kBlockN>(v_tile, &maps.v_ends, &full[stage], keys.stride,
                                                chunk, h, b);
      }
    }
    return;
  }

  ws::grow_registers<Cfg::kConsumerRegisters>();
  const int group = warpgroup - 1, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  // Turns: consumer g issues its products after bar.sync on barrier 1 + g, then hands
  // the turn to the other with bar.arrive. Consumer 0 starts, and takes one more turn
  // after its loop, so that every sync meets exactly one arrive.
  static_assert(Cfg::kConsumers == 2, "turns are taken between two consumers");
  const int my_turn = 1 + group, other_turn = 2 - group;
  if (group == 1) ws::named_arrive(1, kConsumerThreads);

  float o[kOutTiles][4] = {};
  OnlineSoftmax<kScoreTiles, kOutTiles> softmax(q0 + 64 * group + 16 * warp + lane / 4, lane);
  unsigned p[kPvSteps][4];  // P_{t-1} as A fragments
  // TMA writes and wgmma reads are both async-proxy accesses: the barrier orders them,
  // no proxy fence needed.
  ws::mbarrier_wait(q_full, 0);

  for (int t = 0; t < plan.tiles; ++t) {
    const int stage = t % Cfg::kStages;
    ws::mbarrier_wait(&full[stage], (t / Cfg::kStages) % 2);
    ws::named_sync(my_turn, kConsumerThreads);

    float s[kScoreTiles][4];
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk)
      wgmma::mma_ss<Cfg::kBlockN, 0, 0>(s, wgmma::k_major<Cfg::kBlockM>(s_q, 64 * group, kk),
                                        wgmma::k_major<Cfg::kBlockN>(s_k + stage * kKvElems, 0, kk),
                                        kk > 0);
    wgmma::commit();
    if (t > 0) {
      const bf16* v_prev = s_v + ((t - 1) % Cfg::kStages) * kKvElems;
#pragma unroll
      for (int kk = 0; kk < kPvSteps; ++kk)
        wgmma::mma_rs<kD, 1>(o, p[kk], wgmma::mn_major<Cfg::kBlockN>(v_prev, 0, kk), true);
      wgmma::commit();
      ws::named_arrive(other_turn, kConsumerThreads);
      wgmma::wait<1>();  // S_t; P_{t-1} V_{t-1} may still run
    } else {
      ws::named_arrive(other_turn, kConsumerThreads);
      wgmma::wait<0>();
    }

    const KeyTile tile = plan.tile(t, Cfg::kBlockN);
    softmax.mask(s, tile.local || tile.count < Cfg::kBlockN || tile.last_key(keys) > q0, tile, keys);
    const auto correction = softmax.update(s, args.scale_log2);
    wgmma::wait<0>();  // P_{t-1} V_{t-1} is in O: p may be overwritten, O rescaled
    if (t > 0) ws::mbarrier_arrive(&empty[(t - 1) % Cfg::kStages]);  // K, V of tile t - 1 read
#pragma unroll
    for (int kk = 0; kk < kPvSteps; ++kk) mma::accumulators_to_a(p[kk], s[2 * kk], s[2 * kk + 1]);
    softmax.rescale(o, correction);
  }
  if (group == 0) ws::named_sync(my_turn, kConsumerThreads);
  {
    const bf16* v_last = s_v + ((plan.tiles - 1) % Cfg::kStages) * kKvElems;
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kPvSteps; ++kk)
      wgmma::mma_rs<kD, 1>(o, p[kk], wgmma::mn_major<Cfg::kBlockN>(v_last, 0, kk), true);
    wgmma::commit();
    wgmma::wait<0>();
  }

  softmax.store(o, args.out + base, stride, args.lse + shape.stat_base(bh), q1, lane,
                args.scale_log2);
}

}  // namespace ratrain::cuda
