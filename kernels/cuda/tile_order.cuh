// The order in which the CTAs of an attention launch take their (head pair, tile) work
// items, shared by every attention kernel and tested on the host.
//
// The grid is 1-D. The first `sectioned_tiles` tiles of every pair (those that all
// re-read the same rows of their pair: K, V of the global keys in the forward; Q, dO and
// the dq accumulator for the global key tiles of the backward) come first, cut into L2
// sections of `section` pairs; inside a section the CTAs take tile 0 of each of its
// pairs, then tile 1, and so on. Blocks start roughly in index order, so the CTAs
// resident at one time work on a section's few pairs: sized to fit L2, their rows are
// read from DRAM about once. The remaining tiles (the backward's local key tiles, which
// read only their window of queries) follow in the plain order: tile t of every pair,
// then tile t + 1. One section of all pairs is the plain order throughout, where a
// pair's later tiles run waves after its rows have left L2. FlashAttention-3 orders its
// backward the same way. Tile 0 is the one with the most work: kernels number their
// tiles so (longest first), and the sectioned tiles are the longer ones.
#pragma once

#include <cstdint>

#include "kernels/cuda/host_device.cuh"

namespace ratrain::cuda {

struct TileOrder {
  int pairs;            // B*H
  int tiles;            // tiles per pair
  int sectioned_tiles;  // the first tiles of each pair, ordered by sections
  int section;          // pairs per section, >= 1

  struct Item {
    int bh, tile;
  };
  RT_HOST_DEVICE std::int64_t blocks() const { return std::int64_t{pairs} * tiles; }
  // The work item of block `block` (< blocks()).
  RT_HOST_DEVICE Item at(unsigned block) const {
    const unsigned sectioned_blocks = static_cast<unsigned>(pairs) * static_cast<unsigned>(sectioned_tiles);
    if (block >= sectioned_blocks) {
      const unsigned r = block - sectioned_blocks;
      return {static_cast<int>(r % static_cast<unsigned>(pairs)),
              sectioned_tiles + static_cast<int>(r / static_cast<unsigned>(pairs))};
    }
    const unsigned per_section = static_cast<unsigned>(section) * static_cast<unsigned>(sectioned_tiles);
    const int first = static_cast<int>(block / per_section) * section;
    const int width = pairs - first < section ? pairs - first : section;  // the last may be short
    const unsigned r = block % per_section;
    return {first + static_cast<int>(r % static_cast<unsigned>(width)),
            static_cast<int>(r / static_cast<unsigned>(width))};
  }

  static TileOrder plain(int pairs, int tiles) { return {pairs, tiles, 0, 1}; }
  // Sections of the largest power of two of pairs (at most all of them) whose
  // `reread_bytes_per_pair` fit in `l2_bytes`; l2_bytes = 0 gives the plain order.
  static TileOrder sectioned(int pairs, int tiles, int sectioned_tiles,
                             std::int64_t reread_bytes_per_pair, std::int64_t l2_bytes) {
    if (l2_bytes == 0) return plain(pairs, tiles);
    int section = 1;
    while (2 * section <= pairs && 2 * section * reread_bytes_per_pair <= l2_bytes) section *= 2;
    return {pairs, tiles, sectioned_tiles, section};
  }
};

}  // namespace ratrain::cuda
