// Attention backward on Hopper warpgroup MMA (wgmma, sm_90a) for bf16 and dh = 128,
// key-major (tiles as in attention_rule.cuh; formulas in attention_backward.cu).
//
// A CTA of two warpgroups owns one key tile of kBlockN = 128 keys (BackwardPlan);
// warpgroup w owns keys 64w..64w+63. K and V stay in shared memory (wgmma tiles); the
// CTA walks the query range that sees its keys in steps of kBlockM = 64 queries, Q and
// dO double-buffered with cp.async. Per step and warpgroup:
//   S^T = K Q^T, dP^T = V dO^T    8 + 8 x m64n64k16 from shared memory (K-major)
//   P^T = 2^(S^T log2(e)/sqrt(dh) - lse log2(e)), 0 where masked; dS^T = P^T (dP^T - delta)
//                                 in registers (rows = the warpgroup's keys)
//   dV += P^T dO, dK += dS^T Q    4 + 4 x m64n128k16, P^T and dS^T from registers
//                                 (bf16), dO and Q MN-major from shared memory (after dQ)
//   dS^T -> shared memory (128 keys x 64 queries, bf16); barrier
//   dQ[:, 64w..64w+63] = dS K     8 x m64n64k16 over all 128 keys: dS^T read MN-major
//                                 (the "transposed A"), K MN-major (dh block w); issued
//                                 before dV, dK, so that those run during the atomics
//   dQ added to the fp32 accumulator with float2 atomics (not bitwise deterministic:
//   key tiles meet in a dq row in a varying order). Measured alternatives (H100, dense,
//   T = 4K / 16K backward): staging dQ in shared memory and adding 256-byte rows with
//   cp.reduce.async.bulk, within 5 %; staging whole 16 KiB half tiles in register order
//   (conflict-free stores, one bulk reduce-add per warpgroup and step into a tiled
//   accumulator), equal within 1 % (231 / 326 TFLOP/s both). Dropping the adds
//   altogether gives +30 % / +12 %: the cost is the L2 reduction traffic itself
//   (32 KiB per CTA and step), not how it is issued, so the simpler atomics stay.
// lse and delta of each query step are staged in shared memory with the Q and dO
// copies (read from global memory after the S^T product, their latency cost a third
// of the backward's speed).
// At the end dK (times 1/sqrt(dh)) and dV go out as bf16 for the keys the CTA owns.
// Accumulators per thread: dK, dV 64 floats each, S^T, dP^T, dQ 32 each.
#pragma once

#include "kernels/cuda/attention_backward_tile.cuh"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace ratrain::cuda {

struct WgmmaBackwardConfig {
  static constexpr int kD = 128;
  static constexpr int kWarpGroups = 2;
  static constexpr int kThreads = 128 * kWarpGroups;
  static constexpr int kBlockN = 64 * kWarpGroups;  // keys per CTA
  static constexpr int kBlockM = 64;                // queries per step
  static constexpr int kStages = 2;                 // Q, dO, lse, delta buffers
  static constexpr std::size_t kSmemBytes =
      sizeof(__nv_bfloat16) * (2 * kBlockN * kD + 2 * kStages * kBlockM * kD + kBlockN * kBlockM) +
      sizeof(float) * 2 * kStages * kBlockM + wgmma::kGroupBytes;  // K, V; Q, dO; dS^T; lse, delta; alignment
};

__global__ void __launch_bounds__(WgmmaBackwardConfig::kThreads, 1)
    attention_backward_wgmma_kernel(BackwardArgs<__nv_bfloat16> args, TileOrder order) {
  using Cfg = WgmmaBackwardConfig;
  using mma::bf16;
  constexpr int kD = Cfg::kD;
  constexpr int kKSteps = kD / 16;                // k16 steps over dh (S^T, dP^T)
  constexpr int kQuerySteps = Cfg::kBlockM / 16;  // k16 steps over queries (dV, dK)
  constexpr int kKeySteps = Cfg::kBlockN / 16;    // k16 steps over keys (dQ)
  constexpr int kQueryTiles = Cfg::kBlockM / 8;   // n8 tiles of S^T
  constexpr int kOutTiles = kD / 8;               // n8 tiles of dK, dV
  constexpr int kHalfTiles = kD / 16;             // n8 tiles of a warpgroup's dQ columns
  constexpr int kStepElems = Cfg::kBlockM * kD;

  extern __shared__ unsigned char smem_raw[];
  bf16* s_k = wgmma::aligned_tiles(smem_raw);    // (kBlockN, kD)
  bf16* s_v = s_k + Cfg::kBlockN * kD;           // (kBlockN, kD)
  bf16* s_q = s_v + Cfg::kBlockN * kD;           // (kStages, kBlockM, kD)
  bf16* s_do = s_q + Cfg::kStages * kStepElems;  // (kStages, kBlockM, kD)
  bf16* s_dst = s_do + Cfg::kStages * kStepElems;  // (kBlockN, kBlockM): dS^T
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
  const int group = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int col_in_tile = 2 * (lane % 4);

  const int m_first = work.query_first / Cfg::kBlockM;
  const int steps = (work.query_end + Cfg::kBlockM - 1) / Cfg::kBlockM - m_first;
  const auto step_offset = [](int r, int chunk) { return wgmma::tile_offset<Cfg::kBlockM>(r, chunk); };
  auto load_step = [&](int step, int stage) {
    const int q0 = (m_first + step) * Cfg::kBlockM;
    auto source = [&](int r) { return q0 + r < shape.seq ? q0 + r : -1; };
    mma::copy_rows_async<kD, Cfg::kBlockM, Cfg::kThreads>(s_q + stage * kStepElems, step_offset,
                                                          args.q + base, stride, source);
    mma::copy_rows_async<kD, Cfg::kBlockM, Cfg::kThreads>(s_do + stage * kStepElems, step_offset,
                                                          args.dout + base, stride, source);
    copy_stats_async<Cfg::kBlockM>(s_lse + stage * Cfg::kBlockM, s_delta + stage * Cfg::kBlockM, lse,
                                   delta, q0, shape.seq);
  };
  {
    const auto key_offset = [](int r, int chunk) { return wgmma::tile_offset<Cfg::kBlockN>(r, chunk); };
    auto source = [&](int r) { return r < tile.count ? tile.key(keys, r) : -1; };
    mma::copy_rows_async<kD, Cfg::kBlockN, Cfg::kThreads>(s_k, key_offset, args.k + base, stride, source);
    mma::copy_rows_async<kD, Cfg::kBlockN, Cfg::kThreads>(s_v, key_offset, args.v + base, stride, source);
  }
  load_step(0, 0);
  mma::cp_async_commit();

  // Tile rows (key slots) of this lane: row0 and row0 + 8.
  const int row0 = 64 * group + 16 * warp + lane / 4;
  const LaneKeys rows(tile, keys, row0);
  const bool always_masked = tile.local || tile.count < Cfg::kBlockN;  // masks beyond j <= i
  const int last_key = tile.last_key(keys);

  float dk[kOutTiles][4] = {}, dv[kOutTiles][4] = {};

  for (int step = 0; step < steps; ++step) {
    const int stage = step % Cfg::kStages;
    const int q0 = (m_first + step) * Cfg::kBlockM;
    __syncthreads();  // the previous step's readers of s_dst and of stage ^ 1 are done
    if (step + 1 < steps) load_step(step + 1, stage ^ 1);
    mma::cp_async_commit();
    mma::cp_async_wait<1>();
    wgmma::fence_proxy_async();
    __syncthreads();
    const bf16* q_tile = s_q + stage * kStepElems;
    const bf16* do_tile = s_do + stage * kStepElems;

    float st[kQueryTiles][4], dpt[kQueryTiles][4];
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk)
      wgmma::mma_ss<Cfg::kBlockM, 0, 0>(st, wgmma::k_major<Cfg::kBlockN>(s_k, 64 * group, kk),
                                        wgmma::k_major<Cfg::kBlockM>(q_tile, 0, kk), kk > 0);
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk)
      wgmma::mma_ss<Cfg::kBlockM, 0, 0>(dpt, wgmma::k_major<Cfg::kBlockN>(s_v, 64 * group, kk),
                                        wgmma::k_major<Cfg::kBlockM>(do_tile, 0, kk), kk > 0);
    wgmma::commit();

    wgmma::wait<0>();

    const bool masked = always_masked || q0 + Cfg::kBlockM > shape.seq || last_key > q0;
    probabilities_and_ds(st, dpt, rows, q0 + col_in_tile, masked, tile, keys,
                         s_lse + stage * Cfg::kBlockM, s_delta + stage * Cfg::kBlockM, q0,
                         args.scale_log2);
    unsigned p_frag[kQuerySteps][4], ds_frag[kQuerySteps][4];
#pragma unroll
    for (int kk = 0; kk < kQuerySteps; ++kk) {
      mma::accumulators_to_a(p_frag[kk], st[2 * kk], st[2 * kk + 1]);
      mma::accumulators_to_a(ds_frag[kk], dpt[2 * kk], dpt[2 * kk + 1]);
    }
    // dS^T to shared memory: fragment register r of step kk is (row row0 + 8 (r % 2),
    // query columns 16 kk + 8 (r / 2) + col_in_tile, +1).
#pragma unroll
    for (int kk = 0; kk < kQuerySteps; ++kk) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int at = wgmma::tile_offset<Cfg::kBlockN>(row0 + 8 * (r % 2), 2 * kk + r / 2) + col_in_tile;
        *reinterpret_cast<unsigned*>(s_dst + at) = ds_frag[kk][r];
      }
    }

    wgmma::fence_proxy_async();
    __syncthreads();  // dS^T of both warpgroups in shared memory

    // dQ first, then dV and dK: waiting for the dQ group alone leaves the dV, dK products
    // running on the tensor cores while the dQ atomics go out. They end with the step
    // (below): they read this stage's Q and dO, which the next step's copy overwrites,
    // and P^T, dS^T in registers.
    float dq[kHalfTiles][4];
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kKeySteps; ++kk)
      wgmma::mma_ss<kD / 2, 1, 1>(dq, wgmma::mn_major<Cfg::kBlockN>(s_dst, 0, kk),
                                  wgmma::mn_major<Cfg::kBlockN>(s_k, group, kk), kk > 0);
    wgmma::commit();
#pragma unroll
    for (int kk = 0; kk < kQuerySteps; ++kk) {
      wgmma::mma_rs<kD, 1>(dv, p_frag[kk], wgmma::mn_major<Cfg::kBlockM>(do_tile, 0, kk), true);
      wgmma::mma_rs<kD, 1>(dk, ds_frag[kk], wgmma::mn_major<Cfg::kBlockM>(q_tile, 0, kk), true);
    }
    wgmma::commit();
    wgmma::wait<1>();
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int i = q0 + 16 * warp + lane / 4 + 8 * h;
      if (i >= shape.seq) continue;
      float* dq_row = args.dq_acc + base + i * stride + group * (kD / 2) + col_in_tile;
#pragma unroll
      for (int nt = 0; nt < kHalfTiles; ++nt)
        atomicAdd(reinterpret_cast<float2*>(dq_row + 8 * nt),
                  make_float2(dq[nt][2 * h] * args.scale, dq[nt][2 * h + 1] * args.scale));
    }
    wgmma::wait<0>();  // dV, dK
  }

  store_key_gradients(dk, dv, rows, tile.local, keys, args.dk + base, args.dv + base, stride,
                      col_in_tile, args.scale);
}

}  // namespace ratrain::cuda
