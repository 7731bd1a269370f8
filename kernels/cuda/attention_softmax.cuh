// The online softmax of the tensor-core attention forward kernels (mma.sync and
// wgmma), on scores held in the m16n8 accumulator layout: a lane holds rows i_lo and
// i_lo + 8, and in n8 tile j the columns 8j + 2t, 8j + 2t + 1 (t = lane % 4) of both
// (elements 0, 1 of row i_lo; 2, 3 of row i_lo + 8). The four lanes of a quad share
// their rows.
//
// In base 2: p = 2^(s c - m c) with c = log2(e)/sqrt(dh), one fused multiply-add and
// one fast_exp2 per score; the running max m is kept on raw scores (c > 0). The row
// max is shared by the quad (shuffles); the row sum stays per lane until the end.
// Output accumulators are rescaled by 2^((m_old - m_new) c) when the max grows; update
// and rescale are separate so that a kernel may rescale after an earlier tile's P V
// product, still in flight during update, has landed. A row
// whose keys so far are all masked keeps m = -inf and exponentiates against 0, so that
// -inf - -inf never makes a NaN.
#pragma once

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_mma.cuh"

namespace ratrain::cuda {

template <int kScoreTiles, int kOutTiles>
struct OnlineSoftmax {
  int i_lo;         // the lane's first row (query position); the second is i_lo + 8
  int col_in_tile;  // 2 (lane % 4): the lane's first column in an n8 tile
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};

  __device__ OnlineSoftmax(int first_row, int lane) : i_lo(first_row), col_in_tile(2 * (lane % 4)) {}

  // Sets the raw scores s = q.k of key tile `tile` of invisible or missing keys to
  // -inf. `masked` = false promises that every (row, key) of the tile is visible.
  __device__ void mask(float (&s)[kScoreTiles][4], bool masked, const KeyTile& tile,
                       const KeySets& keys) const {
    if (!masked) return;
    static_assert(8 * kScoreTiles <= GlobalKeyBits::kMaxKeys, "key tiles of at most 128 keys");
    // A local tile excludes its global keys: one bit test per key (the same for both rows).
    const GlobalKeyBits globals = tile.local ? GlobalKeyBits::of(keys, tile.first) : GlobalKeyBits{};
#pragma unroll
    for (int nt = 0; nt < kScoreTiles; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int slot = 8 * nt + col_in_tile + e;  // word nt / 4 of the bits: known at compile time
        const bool column = slot < tile.count && !((globals.word[nt / 4] >> (slot % 32)) & 1u);
        const int j = column ? tile.key(keys, slot) : 0;
        // Rows: causal, and within the window for a local tile.
        const auto row_sees = [&](int i) { return j <= i && (!tile.local || i - j <= keys.window); };
        if (!column || !row_sees(i_lo)) s[nt][e] = -INFINITY;
        if (!column || !row_sees(i_lo + 8)) s[nt][2 + e] = -INFINITY;
      }
    }
  }

  // Folds masked raw scores into the running max and sum and turns s into
  // probabilities relative to the new max (scale_log2 = c). Returns the factors
  // 2^((m_old - m_new) c) of the lane's two rows, by which the output accumulators must
  // be rescaled (rescale) before P V of this tile is added to them.
  struct Correction {
    float factor[2];
  };
  __device__ Correction update(float (&s)[kScoreTiles][4], float scale_log2) {
    Correction c;
#pragma unroll
    for (int half = 0; half < 2; ++half) {  // row i_lo, then i_lo + 8
      float tile_max = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kScoreTiles; ++nt)
        tile_max = fmaxf(tile_max, fmaxf(s[nt][2 * half], s[nt][2 * half + 1]));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
      const float m_new = fmaxf(row_max[half], tile_max);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float m_scaled = m_use * scale_log2;
      c.factor[half] = fast_exp2(fmaf(row_max[half], scale_log2, -m_scaled));
      row_max[half] = m_new;
      row_sum[half] *= c.factor[half];
#pragma unroll
      for (int nt = 0; nt < kScoreTiles; ++nt) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float p = fast_exp2(fmaf(s[nt][2 * half + e], scale_log2, -m_scaled));
          s[nt][2 * half + e] = p;
          row_sum[half] += p;
        }
      }
    }
    return c;
  }

  __device__ static void rescale(float (&o)[kOutTiles][4], const Correction& c) {
#pragma unroll
    for (int nt = 0; nt < kOutTiles; ++nt) {
      o[nt][0] *= c.factor[0];
      o[nt][1] *= c.factor[0];
      o[nt][2] *= c.factor[1];
      o[nt][3] *= c.factor[1];
    }
  }

  // Writes O / l as bf16 to the lane's rows below q1 (row i at out_head + i * stride)
  // and lse = (m c + log2 l) ln 2 to lse_head[i]. The sum is >= 1: the row max
  // contributes 2^0.
  __device__ void store(const float (&o)[kOutTiles][4], mma::bf16* out_head, std::int64_t stride,
                        float* lse_head, int q1, int lane, float scale_log2) const {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float sum = row_sum[half];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int i = i_lo + 8 * half;
      if (i >= q1) continue;
      const float inv = 1.0f / sum;
      auto* out_row = reinterpret_cast<unsigned*>(out_head + i * stride + col_in_tile);
#pragma unroll
      for (int nt = 0; nt < kOutTiles; ++nt)
        out_row[4 * nt] = mma::pack_bf16(o[nt][2 * half] * inv, o[nt][2 * half + 1] * inv);
      if (lane % 4 == 0) lse_head[i] = (row_max[half] * scale_log2 + log2f(sum)) * kLn2;
    }
  }
};

}  // namespace ratrain::cuda
