// Which keys a rank of the sequence-parallel (sp) group needs under a dilated (D > 1) or
// local-only (D = -1) rule, and which rank sends each: pure index arithmetic, no
// communication, the same answer on every rank (DESIGN.md "Parallel layout", SP
// "Attention"; the rule is RATPLUS.md "Visibility rules", kernels/visibility.hpp).
//
// Rank r of S holds positions [c0, c1) = [r L, (r + 1) L) of every sample (L = chunk
// length, the same on every rank). The keys its queries can see form a disjoint union by
// position of four parts:
//   prefix  [0, a)       a = min(P, c0)          the first P keys, before the chunk
//   ends    {j in gap : (j + 1) % D == 0}        chunk ends of gap = [a, h) (D > 1 only)
//   halo    [h, c0)      h = max(a, c0 - W)      the W keys before the chunk
//   own     [c0, c1)
// This is exactly the union of the visible sets of the chunk's queries: query c0 sees the
// whole prefix and halo, query c1 - 1 the whole own chunk, and by visibility.hpp's
// decomposition (its window starts at i - W >= c0 - W) a query sees nothing else. A key
// that is both a chunk end and in the prefix, halo or own chunk is listed once, there.
//
// How the keys arrive (sequence_attention_dilated.cpp): prefix and halo point to point
// from their owners, all earlier ranks; the chunk ends through one all-gather in which
// every rank contributes its own chunk ends, padded to chunk_end_capacity rows. So a rank
// receives at most P + W + (S - 1) ceil(L / D) keys and never the whole sequence's K, V.
//
// Worked example: L = 6, S = 3, D = 4, W = 2, P = 1, rank 2 (c0 = 12, c1 = 18):
//   a = min(1, 12) = 1, h = max(1, 12 - 2) = 10
//   prefix {0}, ends in [1, 10) = {3, 7}, halo {10, 11}, own {12 .. 17}: 11 keys of 18.
//   Point to point: rank 0 sends {0}, rank 1 sends {10, 11}.
//   Chunk ends owned: rank 0 {3}, rank 1 {7, 11}, rank 2 {15}; capacity ceil(6/4) = 2.
//   Slot of 7 in the gathered chunk ends: owner 7 / 6 = 1, index (7 + 1)/4 - 1 - 6/4 = 0.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/visibility.hpp"
#include "parallel/sequence_rows.hpp"

namespace ratrain {

struct DilatedKeyPlan {
  IndexRange prefix, gap, halo, own;    // see the file comment
  std::vector<std::int64_t> positions;  // the assembled key set, increasing
  std::int64_t keys_received = 0;       // key rows arriving from other ranks

  // Index of `position` in `positions` (which must hold it).
  std::int64_t index_of(std::int64_t position) const;
};

// The key set of rank `rank` of `ranks`, chunk length `chunk`; rule.dilation != 1.
DilatedKeyPlan plan_dilated_keys(const Sparsity& rule, int rank, int ranks, std::int64_t chunk);

// The positions of `owner`'s chunk that `requester` fetches point to point (its prefix
// and halo keys there), increasing; empty unless owner < requester.
std::vector<std::int64_t> exchanged_positions(const Sparsity& rule, std::int64_t chunk,
                                              int owner, int requester);

// The chunk ends {j in range : (j + 1) % D == 0}, increasing; none unless D > 1.
std::vector<std::int64_t> chunk_ends_in(IndexRange range, int dilation);

// Rows each rank contributes to the chunk-end all-gather: ceil(L / D), the most chunk
// ends L consecutive positions can hold (a chunk holds floor or ceil of L / D); 0 unless
// D > 1.
std::int64_t chunk_end_capacity(int dilation, std::int64_t chunk);

// Where chunk end j sits in the all-gathered chunk ends: its owner's block, and its
// index among the owner's chunk ends. There are floor(x / D) chunk ends in [0, x), so
// j = m D - 1 is number (j + 1) / D - 1 overall and the owner's first is number
// floor(owner L / D).
struct ChunkEndSlot {
  int owner;
  std::int64_t index;
};
ChunkEndSlot chunk_end_slot(std::int64_t j, int dilation, std::int64_t chunk);

}  // namespace ratrain
