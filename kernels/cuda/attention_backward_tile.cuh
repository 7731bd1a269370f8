// Per-lane pieces of the key-major tensor-core backward kernels (mma.sync and wgmma),
// on tiles in the m16n8 accumulator layout with rows = keys and columns = queries: a
// lane holds tile rows r and r + 8 and, in n8 tile j, the query columns 8j + 2t, +1
// (t = lane % 4); elements 0, 1 belong to row r, 2, 3 to row r + 8.
#pragma once

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_mma.cuh"

namespace ratrain::cuda {

// The keys of a lane's two tile rows (slots `slot` and `slot + 8` of the key tile);
// -1 past the tile's end.
struct LaneKeys {
  int key[2];
  __device__ LaneKeys(const KeyTile& tile, const KeySets& keys, int slot) {
#pragma unroll
    for (int h = 0; h < 2; ++h) key[h] = slot + 8 * h < tile.count ? tile.key(keys, slot + 8 * h) : -1;
  }
};

// Copies lse[q0, q0 + kRows) and delta[q0, q0 + kRows) (zeros past T) to shared memory,
// one value per thread of the first 2 kRows threads; completes at the next
// cp_async_wait. Staged with the step's Q and dO, the statistics are at hand when the
// scores are: read from global memory after the products, their latency is exposed.
template <int kRows>
__device__ __forceinline__ void copy_stats_async(float* s_lse, float* s_delta, const float* lse,
                                                 const float* delta, int q0, int seq) {
  const int r = static_cast<int>(threadIdx.x) % kRows;
  if (threadIdx.x >= 2 * kRows) return;
  const bool first = threadIdx.x < kRows;
  const bool valid = q0 + r < seq;
  mma::cp_async_4((first ? s_lse : s_delta) + r, (first ? lse : delta) + (valid ? q0 + r : 0), valid);
}

// Turns S^T = K Q^T into P^T = 2^(S^T scale_log2 - lse log2(e)) (0 where the query
// does not see the key or is past T) and dP^T = V dO^T into dS^T = P^T (dP^T - delta),
// in place. The lane's query columns are first_query + 8j + {0, 1}; the statistics of
// query i are lse[i - first_stat] and delta[i - first_stat] (the step's rows staged by
// copy_stats_async, first_stat = the step's first query). masked = false promises that
// every pair is visible.
template <int kTiles>
__device__ __forceinline__ void probabilities_and_ds(float (&st)[kTiles][4], float (&dpt)[kTiles][4],
                                                     const LaneKeys& rows, int first_query,
                                                     bool masked, const KeyTile& tile,
                                                     const KeySets& keys, const float* lse,
                                                     const float* delta, int first_stat,
                                                     float scale_log2) {
#pragma unroll
  for (int nt = 0; nt < kTiles; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int i = first_query + 8 * nt + e;
      const bool in_range = i < keys.seq;
      const float lse2 = in_range ? lse[i - first_stat] * kLog2e : 0.0f;
      const float dlt = in_range ? delta[i - first_stat] : 0.0f;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int x = 2 * h + e;  // fragment element of row h, column e
        const bool seen = !masked || (rows.key[h] >= 0 && in_range && keys.visible(tile.local, i, rows.key[h]));
        const float p = seen ? fast_exp2(fmaf(st[nt][x], scale_log2, -lse2)) : 0.0f;
        st[nt][x] = p;
        dpt[nt][x] = p * (dpt[nt][x] - dlt);
      }
    }
  }
}

// Writes dK (times scale) and dV of the lane's keys as bf16, columns first_col + 8j +
// {0, 1}: every key of a global tile, the non-global keys of a local tile (a global key
// there is masked; its gradient comes from its global tile).
template <int kTiles>
__device__ __forceinline__ void store_key_gradients(const float (&dk)[kTiles][4], const float (&dv)[kTiles][4],
                                                    const LaneKeys& rows, bool local_tile,
                                                    const KeySets& keys, mma::bf16* dk_head,
                                                    mma::bf16* dv_head, std::int64_t stride,
                                                    int first_col, float scale) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int key = rows.key[h];
    if (key < 0 || (local_tile && keys.is_global(key))) continue;
    const std::int64_t at = key * stride + first_col;
    auto* dk_row = reinterpret_cast<unsigned*>(dk_head + at);
    auto* dv_row = reinterpret_cast<unsigned*>(dv_head + at);
#pragma unroll
    for (int nt = 0; nt < kTiles; ++nt) {
      dk_row[4 * nt] = mma::pack_bf16(dk[nt][2 * h] * scale, dk[nt][2 * h + 1] * scale);
      dv_row[4 * nt] = mma::pack_bf16(dv[nt][2 * h], dv[nt][2 * h + 1]);
    }
  }
}

}  // namespace ratrain::cuda
