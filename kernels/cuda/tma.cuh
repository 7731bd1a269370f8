// Tensor Memory Accelerator (TMA, sm_90) loads of attention rows into wgmma tiles.
//
// One thread issues cp.async.bulk.tensor for a whole box; the hardware writes it into
// shared memory in the 128-byte-swizzled layout that wgmma.cuh's tiles use and counts
// the bytes on an mbarrier ("complete_tx"), so a producer needs one thread, not a
// warpgroup of copy loops.
//
// Maps of q, k or v (B, T, H, dh) bf16, innermost dimension first:
//   rows        (dh, T, H, B), box (64, rows, 1, 1): `rows` consecutive positions;
//   chunk ends  (dh, D, T / D, H, B), box (64, 1, rows, 1, 1): positions c*D + D - 1 of
//               `rows` consecutive chunks c, the dilated rule's global keys read by stride.
// Either box is one 64-column block (128 bytes per row) of one (b, h); a wgmma tile of
// kRows rows and dh = 128 is two boxes, column block c at tile + c * kRows * 64 elements
// (wgmma::tile_offset). Rows past the tensor read as zeros, and a box always counts its
// full size on the barrier.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_mma.cuh"

namespace ratrain::cuda {

// Host: the maps of one (B, T, H, dh) bf16 operand with boxes of `rows` rows; the chunk
// ends of chunks of `chunk` positions (T >= chunk >= 2).
CUtensorMap make_attention_rows_map(const void* base, const AttentionShape& shape, int rows);
CUtensorMap make_chunk_ends_map(const void* base, const AttentionShape& shape, int chunk,
                                int rows);

namespace tma {

// Arrives on `bar` and adds `bytes` to the transaction count its phase waits for.
__device__ __forceinline__ void arrive_expect_bytes(std::uint64_t* bar, unsigned bytes) {
  asm volatile(
      "{\n.reg .b64 state;\nmbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(
          mma::shared_address(bar)),
      "r"(bytes)
      : "memory");
}

// Loads the box of a rows map at (column, position, head, batch) into `dst` (1024-byte
// aligned), completing its bytes on `bar`.
__device__ __forceinline__ void load_rows_box(void* dst, const CUtensorMap* map,
                                              std::uint64_t* bar, int column, int position,
                                              int head, int batch) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes "
      "[%0], [%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(mma::shared_address(dst)),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(mma::shared_address(bar)), "r"(column),
      "r"(position), "r"(head), "r"(batch)
      : "memory");
}
// The same for a chunk-ends map, from chunk `chunk` (offset D - 1 inside each chunk).
__device__ __forceinline__ void load_chunk_ends_box(void* dst, const CUtensorMap* map,
                                                    std::uint64_t* bar, int column, int last,
                                                    int chunk, int head, int batch) {
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes "
      "[%0], [%1, {%3, %4, %5, %6, %7}], [%2];\n" ::"r"(mma::shared_address(dst)),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(mma::shared_address(bar)), "r"(column),
      "r"(last), "r"(chunk), "r"(head), "r"(batch)
      : "memory");
}

// A dh = 128 wgmma tile of kRows consecutive positions from `position`: two boxes.
template <int kRows>
__device__ __forceinline__ void load_rows_tile(__nv_bfloat16* tile, const CUtensorMap* map,
                                               std::uint64_t* bar, int position, int head,
                                               int batch) {
  load_rows_box(tile, map, bar, 0, position, head, batch);
  load_rows_box(tile + kRows * 64, map, bar, 64, position, head, batch);
}
// A dh = 128 wgmma tile of the chunk ends of kRows chunks from `chunk` (chunks of `D`).
template <int kRows>
__device__ __forceinline__ void load_chunk_ends_tile(__nv_bfloat16* tile, const CUtensorMap* map,
                                                     std::uint64_t* bar, int D, int chunk,
                                                     int head, int batch) {
  load_chunk_ends_box(tile, map, bar, 0, D - 1, chunk, head, batch);
  load_chunk_ends_box(tile + kRows * 64, map, bar, 64, D - 1, chunk, head, batch);
}

}  // namespace tma
}  // namespace ratrain::cuda
