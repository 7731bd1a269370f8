// The RAT+ visibility rule cut into tiles for attention over an explicit key set
// (attention_keys.cu): key row n of k, v sits at global position positions[n] (strictly
// increasing, >= 0) and query row t of q at q_begin + t. The counterpart of
// attention_rule.cuh's QueryTilePlan and BackwardPlan, whose decomposition it follows
// with a key's row and its position told apart:
//   GLOBAL keys: those whose POSITION is global (KeySets::is_global: the prefix, the
//     chunk ends; every key before the queries' end when dense). Numbered compactly
//     g = 0, 1, ... in row order, key g at row global_row(g). Query i sees global key j
//     iff j <= i.
//   LOCAL keys: the others. Query i sees local key j iff j <= i and i - j <= W; since
//     positions increase, the keys of a window are a contiguous range of rows.
// The KeySets are those of the sequence [0, q_end), q_end = q_begin + Tq: a key at a
// position >= q_end is seen by no query, whatever it is classified as (host and device
// classify it alike, so ownership stays consistent).
//
// Forward, query rows [t0, t1) at positions [i0, i1] (i1 = q_begin + t1 - 1): LOCAL tiles
// over the rows whose positions lie in [i0 - W, i1] (global keys masked there), then
// GLOBAL tiles over the compact keys at positions <= i1 (masked by j <= i). Keys outside
// both are seen by no query of the tile: a local key before i0 - W is out of every
// window, and anything after i1 follows every query. The row ranges come from searches
// over the increasing positions (a warp-wide one on the device).
// Backward, key-major: global tiles (compact; the earliest keys first), each meeting the
// query rows from its first key's position to Tq; then local tiles of Tk rows, each
// meeting the query rows whose positions lie in [first position, last position + W]. A
// local tile writes dk, dv of its non-global keys only, so every key has one owner.
//
// Worked example: D = 4, W = 2, P = 1, q_begin = 12, Tq = 6 (queries 12..17), key
// positions {0, 3, 7, 10, 11, 12, 13, 14, 15, 16, 17} at rows 0..10 (rank 2 of the
// parallel/dilated_key_plan.hpp example). Global: 0 (prefix), 3, 7, 11, 15 -> rows
// {0, 1, 2, 4, 8}. Query rows [0, 4) (positions 12..15), tiles of 4 keys: local rows with
// positions in [10, 15] are rows 3..8 -> tiles {3, 4, 5, 6}, {7, 8}; 5 global keys at
// positions <= 15 -> tiles {g 0..3}, {g 4}. Query 13 then sees the globals {0, 3, 7, 11}
// (15 > 13 masked) and the locals {12, 13} (10: 13 - 10 > W; 11 is global; 14 > 13):
// {0, 3, 7, 11, 12, 13}, which is for_each_visible_key(D = 4, W = 2, P = 1, i = 13).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cuda/attention_rule.cuh"
#include "kernels/cuda/host_device.cuh"

namespace ratrain::cuda {

// A key set as the kernels see it. Positions are int: q_end < 2^30, Tk < 2^30.
struct ListedKeys {
  KeySets sets;            // the rule over [0, q_end): is_global, visible, window, prefix
  const int* positions;    // (Tk) increasing
  const int* global_rows;  // (global_count) rows of the global keys, increasing; null when
                           // they are rows 0 .. global_count - 1 (dense, local only, ...)
  int count;               // Tk
  int global_count;
  int q_begin;             // position of query row 0
  int query_count;         // Tq

  RT_HOST_DEVICE int global_row(int g) const { return global_rows ? global_rows[g] : g; }
  // Row of slot `slot` of a tile (first: a row when local, a compact index when global).
  RT_HOST_DEVICE int row(const KeyTile& tile, int slot) const {
    return tile.local ? tile.first + slot : global_row(tile.first + slot);
  }
};

// The rows n < count whose positions are global under `sets`, increasing (host side).
inline std::vector<int> global_rows_of(const KeySets& sets, const std::int32_t* positions, int count) {
  std::vector<int> rows;
  for (int n = 0; n < count; ++n)
    if (sets.is_global(positions[n])) rows.push_back(n);
  return rows;
}

// True when `rows` are 0 .. size - 1: ListedKeys then needs no list.
inline bool rows_are_leading(const std::vector<int>& rows) {
  for (std::size_t g = 0; g < rows.size(); ++g)
    if (rows[g] != static_cast<int>(g)) return false;
  return true;
}

// The key tiles of query rows [t0, t1) (forward). `search(first, end, x, value)` returns
// the first n in [first, end] with value(n) > x (end when none), value increasing in n.
struct ListedQueryTilePlan {
  int local_first;   // first row at a position >= i0 - W (0 when dense: unused)
  int local_end;     // first row at a position > i1
  int local_tiles;
  int global_end;    // global keys at positions <= i1
  int tiles;         // local + global tiles

  template <typename Search>
  RT_HOST_DEVICE static ListedQueryTilePlan of(const ListedKeys& keys, int t0, int t1, int block_n,
                                               const Search& search) {
    const int i0 = keys.q_begin + t0, i1 = keys.q_begin + t1 - 1;
    const int* positions = keys.positions;
    ListedQueryTilePlan p{};
    if (keys.sets.has_local) {
      // The last position before the window of query i0 (-1: the window reaches 0).
      const int before = keys.sets.window < i0 ? i0 - keys.sets.window - 1 : -1;
      const auto position = [positions](int n) { return positions[n]; };
      p.local_first = search(0, keys.count, before, position);
      p.local_end = search(p.local_first, keys.count, i1, position);
      p.local_tiles = (p.local_end - p.local_first + block_n - 1) / block_n;
    }
    const ListedKeys* set = &keys;
    p.global_end = search(0, keys.global_count, i1,
                          [set](int g) { return set->positions[set->global_row(g)]; });
    p.tiles = p.local_tiles + (p.global_end + block_n - 1) / block_n;
    return p;
  }

  RT_HOST_DEVICE KeyTile tile(int t, int block_n) const {
    if (t < local_tiles) {
      const int first = local_first + t * block_n;
      const int left = local_end - first;
      return {true, first, left < block_n ? left : block_n};
    }
    const int first = (t - local_tiles) * block_n;
    const int left = global_end - first;
    return {false, first, left < block_n ? left : block_n};
  }
};

// The key tiles of the backward: global tiles over the compact list, then local tiles
// over all Tk rows, each with the query rows [query_first, query_end) that can see it.
struct ListedBackwardPlan {
  int global_tiles;
  int local_tiles;

  RT_HOST_DEVICE static ListedBackwardPlan of(const ListedKeys& keys, int block_n) {
    ListedBackwardPlan p{};
    p.global_tiles = (keys.global_count + block_n - 1) / block_n;
    p.local_tiles = keys.sets.has_local ? (keys.count + block_n - 1) / block_n : 0;
    return p;
  }
  RT_HOST_DEVICE int tiles() const { return global_tiles + local_tiles; }

  // Reads the positions of the tile's first and last keys.
  RT_HOST_DEVICE KeyTileWork work(const ListedKeys& keys, int tile, int block_n) const {
    const auto clamp_row = [&keys](std::int64_t position) {  // query row of a position, in [0, Tq]
      const std::int64_t t = position - keys.q_begin;
      return static_cast<int>(t < 0 ? 0 : t > keys.query_count ? keys.query_count : t);
    };
    if (tile < global_tiles) {
      const int first = tile * block_n;
      const int left = keys.global_count - first;
      const KeyTile tile_keys{false, first, left < block_n ? left : block_n};
      return {tile_keys, clamp_row(keys.positions[keys.global_row(first)]), keys.query_count};
    }
    const int first = (tile - global_tiles) * block_n;
    const int left = keys.count - first;
    const KeyTile tile_keys{true, first, left < block_n ? left : block_n};
    const int last_position = keys.positions[first + tile_keys.count - 1];
    // A tile inside the prefix holds only global keys: nothing of its own to compute.
    if (last_position < keys.sets.prefix) return {tile_keys, 0, 0};
    return {tile_keys, clamp_row(keys.positions[first]),
            clamp_row(std::int64_t{last_position} + keys.sets.window + 1)};
  }
};

}  // namespace ratrain::cuda

