// Attention forward on Hopper warpgroup MMA (wgmma, sm_90a) for bf16 and dh = 128.
//
// A CTA of two warpgroups owns kBlockM = 128 queries of one (b, h) pair (the latest
// query tiles, which see the most keys, first); warpgroup w owns queries 64w..64w+63,
// and its warps 16 rows each. K and V tiles of kBlockN = 128 keys come from
// QueryTilePlan (local tiles, then compact global tiles read by stride; attention_rule.cuh)
// through a 3-stage cp.async ring of wgmma tiles (wgmma.cuh). Per tile and warpgroup:
//   S = Q K^T       8 x m64n128k16, Q and K from shared memory (K-major both)
//   mask and online softmax in registers (attention_softmax.cuh) -> P (bf16 registers)
//   O += P V        8 x m64n128k16, P from registers, V from shared memory (MN-major:
//                   V is stored (keys, dh), dh contiguous)
// Software pipelining inside the warpgroup (as FlashAttention-3): iteration t issues
// S_t = Q K_t and then O += P_{t-1} V_{t-1}, and runs the softmax of S_t while the
// second product is in flight; O is rescaled for tile t once that product has landed.
// So the tensor cores work during the softmax. Tile t+1 is prefetched during iteration
// t into the stage that P_{t-2} V_{t-2} released, hence 3 stages.
// Registers per thread: O and S 64 floats each, P (of tile t-1) 32.
// At the end O / l goes out as bf16 and lse as f32.
#pragma once

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_softmax.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace ratrain::cuda {

struct WgmmaForwardConfig {
  static constexpr int kD = 128;
  static constexpr int kWarpGroups = 2;
  static constexpr int kThreads = 128 * kWarpGroups;
  static constexpr int kBlockM = 64 * kWarpGroups;  // queries per CTA
  static constexpr int kBlockN = 128;               // keys per tile
  static constexpr int kStages = 3;                 // K/V buffers
  static constexpr std::size_t kSmemBytes =
      sizeof(__nv_bfloat16) * (kBlockM + 2 * kStages * kBlockN) * kD + wgmma::kGroupBytes;  // + alignment
};

__global__ void __launch_bounds__(WgmmaForwardConfig::kThreads, 1)
    attention_forward_wgmma_kernel(ForwardArgs<__nv_bfloat16> args) {
  using Cfg = WgmmaForwardConfig;
  using mma::bf16;
  constexpr int kD = Cfg::kD;
  constexpr int kKSteps = kD / 16;                  // k16 steps of Q K^T
  constexpr int kPvSteps = Cfg::kBlockN / 16;       // k16 steps of P V
  constexpr int kScoreTiles = Cfg::kBlockN / 8;     // n8 tiles of S
  constexpr int kOutTiles = kD / 8;                 // n8 tiles of O
  constexpr int kKvElems = Cfg::kBlockN * kD;

  extern __shared__ unsigned char smem_raw[];
  bf16* s_q = wgmma::aligned_tiles(smem_raw);  // (kBlockM, kD) wgmma tile
  bf16* s_k = s_q + Cfg::kBlockM * kD;         // (kStages, kBlockN, kD) wgmma tiles
  bf16* s_v = s_k + Cfg::kStages * kKvElems;   // (kStages, kBlockN, kD) wgmma tiles

  const AttentionShape& shape = args.shape;
  const KeySets& keys = args.keys;
  const int bh = blockIdx.x;
  const int q0 = (gridDim.y - 1 - blockIdx.y) * Cfg::kBlockM;
  const int q1 = min(q0 + Cfg::kBlockM, shape.seq);
  const std::int64_t base = shape.head_base(bh), stride = shape.row_stride();
  const QueryTilePlan plan = QueryTilePlan::of(keys, q0, q1, Cfg::kBlockN);
  const int group = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;

  const auto kv_offset = [](int r, int chunk) { return wgmma::tile_offset<Cfg::kBlockN>(r, chunk); };
  auto load_keys = [&](int t, int stage) {
    const KeyTile tile = plan.tile(t, Cfg::kBlockN);
    auto source = [&](int r) { return r < tile.count ? tile.key(keys, r) : -1; };
    mma::copy_rows_async<kD, Cfg::kBlockN, Cfg::kThreads>(s_k + stage * kKvElems, kv_offset,
                                                          args.k + base, stride, source);
    mma::copy_rows_async<kD, Cfg::kBlockN, Cfg::kThreads>(s_v + stage * kKvElems, kv_offset,
                                                          args.v + base, stride, source);
  };
  mma::copy_rows_async<kD, Cfg::kBlockM, Cfg::kThreads>(
      s_q, [](int r, int chunk) { return wgmma::tile_offset<Cfg::kBlockM>(r, chunk); },
      args.q + base, stride, [&](int r) { return q0 + r < q1 ? q0 + r : -1; });
  load_keys(0, 0);  // plan.tiles >= 1: every query sees itself
  mma::cp_async_commit();

  float o[kOutTiles][4] = {};
  OnlineSoftmax<kScoreTiles, kOutTiles> softmax(q0 + 64 * group + 16 * warp + lane / 4, lane);
  unsigned p[kPvSteps][4];  // P_{t-1} as A fragments

  for (int t = 0; t < plan.tiles; ++t) {
    const int stage = t % Cfg::kStages;
    mma::cp_async_wait<0>();  // tile t, prefetched in iteration t - 1 (or the prologue)
    wgmma::fence_proxy_async();
    __syncthreads();          // tile t visible; iteration t - 1 (P_{t-2} V_{t-2}) done everywhere
    if (t + 1 < plan.tiles) {
      load_keys(t + 1, (t + 1) % Cfg::kStages);
      mma::cp_async_commit();
    }

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
      wgmma::wait<1>();  // S_t; P_{t-1} V_{t-1} may still run
    } else {
      wgmma::wait<0>();
    }

    const KeyTile tile = plan.tile(t, Cfg::kBlockN);
    softmax.mask(s, tile.local || tile.count < Cfg::kBlockN || tile.last_key(keys) > q0,
                 tile, keys);
    const auto correction = softmax.update(s, args.scale_log2);
    wgmma::wait<0>();  // P_{t-1} V_{t-1} is in O: p may be overwritten, O rescaled
#pragma unroll
    for (int kk = 0; kk < kPvSteps; ++kk) mma::accumulators_to_a(p[kk], s[2 * kk], s[2 * kk + 1]);
    softmax.rescale(o, correction);
  }
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
