// The RAT+ visibility rule (kernels/visibility.hpp) cut into tiles, shared by the CUDA
// attention kernels (forward and backward, CUDA-core and tensor-core).
//
// Decomposition. visible(i, j) <=> j <= i and (global(j) or i - j <= W), with
//   global(j) = j < P  or  (D > 1 and (j + 1) % D == 0)     (dilated, D > 1)
//   global(j) = j < P                                       (local only, D = -1)
//   global(j) = true                                        (dense, D = 1)
// so the keys of query i are the disjoint union of
//   (a) GLOBAL keys j <= i: the prefix 0..P-1, then the chunk ends D-1, 2D-1, ... that
//       are >= P. Numbered compactly g = 0, 1, 2, ...: key(g) = g for g < P, else
//       first_end + (g - P) * D. They are read from k and v BY STRIDE (row stride D
//       rows): no gathered copy exists. Global keys j < n number count_below(n), and
//       since key(g) grows with g, those j <= i are exactly g < count_below(i + 1): a
//       prefix of the compact list, so a query tile needs the compact tiles up to
//       count_below(last query + 1), masked by j <= i.
//   (b) LOCAL keys j in [i - W, i] that are NOT global: a contiguous range, masked.
// One online softmax runs over both sets; (b) excludes the globals, so no key is
// counted twice. Dense is "all keys global" (plain causal attention over the compact
// = contiguous list); local-only has no chunk ends. Cost per query O(P + T/D + W).
//
// Worked example: D = 4, W = 2, P = 1, T = 16, tiles of 4 keys, query tile [12, 16).
//   global keys: prefix {0}, first chunk end >= P is 3, so key(g) = 0, 3, 7, 11, 15
//   for g = 0..4; count_below(16) = 5 -> compact tiles {0, 3, 7, 11} and {15}.
//   local range: [12 - 2, 16) = {10, ..., 15}; tiles {10, 11, 12, 13} and {14, 15},
//   where the globals 11 and 15 are masked.
//   Query 13 then sees globals {0, 3, 7, 11} (j <= 13; 15 masked) and locals {12, 13}
//   (10 and 14 fail 13 - j <= 2 or j <= 13): {0, 3, 7, 11, 12, 13}, which is what
//   for_each_visible_key(D = 4, W = 2, P = 1, i = 13) enumerates.
//
// Backward is key-major: each key tile is owned by one CTA, which writes dk and dv of
// the keys it owns and nothing else. A compact tile of global keys, first key ja, is
// seen by queries [ja, T); a contiguous tile of local keys [j0, j1) by queries
// [j0, j1 - 1 + W]. A global key inside a local tile is masked there (its gradient
// comes from its global tile) and not written by that CTA.
#pragma once

#include <cstdint>

#include "kernels/visibility.hpp"

#include "kernels/cuda/host_device.cuh"

namespace ratrain::cuda {

// The key sets of one (rule, T). Positions are int: T < 2^31.
struct KeySets {
  int seq;        // T
  int prefix;     // global prefix [0, prefix): min(P, T), and T when dense
  int stride;     // D of the chunk ends; 0 when there are none below T
  int first_end;  // smallest chunk end D*m - 1 >= P (meaningful when stride > 0)
  int window;     // W
  bool has_local; // false when dense (every key is global)

  static KeySets of(const Sparsity& rule, int seq) {
    KeySets s{seq, 0, 0, 0, rule.window, rule.dilation != 1};
    if (rule.dilation == 1) {
      s.prefix = seq;
      return s;
    }
    s.prefix = rule.initial < seq ? rule.initial : seq;
    if (rule.dilation > 1) {
      const std::int64_t d = rule.dilation;
      const std::int64_t first = (std::int64_t{rule.initial} + d) / d * d - 1;  // ceil((P+1)/D) D - 1
      if (first < seq) {
        s.stride = rule.dilation;
        s.first_end = static_cast<int>(first);
      }
    }
    return s;
  }

  RT_HOST_DEVICE bool is_global(int j) const {
    return j < prefix || (stride > 0 && j >= first_end && (j - first_end) % stride == 0);
  }
  // Number of global keys j < n, for 0 <= n <= T.
  RT_HOST_DEVICE int count_below(int n) const {
    int count = n < prefix ? n : prefix;
    if (stride > 0 && first_end < n) count += (n - 1 - first_end) / stride + 1;
    return count;
  }
  // The g-th global key, for 0 <= g < count_below(T).
  RT_HOST_DEVICE int key(int g) const {
    return g < prefix ? g : first_end + (g - prefix) * stride;
  }
  // Whether query i sees key j through the given set (the mask of a tile).
  RT_HOST_DEVICE bool visible(bool local_set, int i, int j) const {
    return j <= i && (!local_set || (i - j <= window && !is_global(j)));
  }
};

// Which keys of a contiguous (local) tile of at most kMaxKeys keys from `first` are
// global: bit s of word[s / 32] for key first + s. Built once per tile, so that masking
// a local tile tests one bit per key instead of dividing by D.
struct GlobalKeyBits {
  static constexpr int kMaxKeys = 128;
  unsigned word[kMaxKeys / 32];

  RT_HOST_DEVICE static GlobalKeyBits of(const KeySets& s, int first) {
    GlobalKeyBits bits{};
    const int end = first + kMaxKeys;
    bits.set_first((s.prefix < end ? s.prefix : end) - first);  // the prefix, if it reaches the tile
    if (s.stride > 0) {
      int j = s.first_end;
      if (j < first) j += (first - j + s.stride - 1) / s.stride * s.stride;  // first chunk end >= first
      for (; j < end; j += s.stride) {
        // Static word indices keep the words in registers on the GPU.
        for (int w = 0; w < kMaxKeys / 32; ++w)
          if ((j - first) / 32 == w) bits.word[w] |= 1u << ((j - first) % 32);
      }
    }
    return bits;
  }
  RT_HOST_DEVICE bool test(int slot) const { return (word[slot / 32] >> (slot % 32)) & 1u; }

 private:
  // Sets slots [0, n) (nothing when n <= 0).
  RT_HOST_DEVICE void set_first(int n) {
    for (int w = 0; w < kMaxKeys / 32; ++w) {
      const int count = n - 32 * w;
      if (count >= 32) word[w] = ~0u;
      else if (count > 0) word[w] = (1u << count) - 1u;
    }
  }
};

// A tile of keys: `count` contiguous local keys from `first`, or `count` global keys
// with compact indices from `first`.
struct KeyTile {
  bool local;
  int first;
  int count;
  RT_HOST_DEVICE int key(const KeySets& s, int slot) const {
    return local ? first + slot : s.key(first + slot);
  }
  // Last (largest) key of the tile; count > 0.
  RT_HOST_DEVICE int last_key(const KeySets& s) const { return key(s, count - 1); }
};

// The key tiles of the query tile [q0, q1) (forward): local tiles over [lo, q1), then
// compact global tiles over [0, count_below(q1)), cut where the prefix ends, so that
// every tile is either consecutive positions (local, prefix) or chunk ends D apart
// (one tensor-map box each, tma.cuh). Worked example: P = 200, D = 64, T = 4096,
// tiles of 128, q1 = 4096: global keys 0..199 then 255, 319, ..., 4095 (count_below =
// 200 + 61); tiles: prefix {0..127}, {128..199}, then chunk ends {g = 200..260}.
struct QueryTilePlan {
  int local_first;   // lo = max(0, q0 - W)
  int local_end;     // q1
  int local_tiles;
  int prefix_count;  // global keys of the prefix j < q1: min(P, global_count)
  int prefix_tiles;
  int global_count;  // global keys j < q1
  int tiles;         // local + prefix + chunk-end tiles

  RT_HOST_DEVICE static QueryTilePlan of(const KeySets& s, int q0, int q1, int block_n) {
    QueryTilePlan p{};
    if (s.has_local) {
      p.local_first = q0 - (s.window < q0 ? s.window : q0);
      p.local_end = q1;
      p.local_tiles = (q1 - p.local_first + block_n - 1) / block_n;
    }
    p.global_count = s.count_below(q1);
    p.prefix_count = s.prefix < p.global_count ? s.prefix : p.global_count;
    p.prefix_tiles = (p.prefix_count + block_n - 1) / block_n;
    p.tiles = p.local_tiles + p.prefix_tiles +
              (p.global_count - p.prefix_count + block_n - 1) / block_n;
    return p;
  }
  RT_HOST_DEVICE KeyTile tile(int t, int block_n) const {
    if (t < local_tiles) {
      const int first = local_first + t * block_n;
      const int left = local_end - first;
      return {true, first, left < block_n ? left : block_n};
    }
    t -= local_tiles;
    const int first = t < prefix_tiles ? t * block_n : prefix_count + (t - prefix_tiles) * block_n;
    const int left = (t < prefix_tiles ? prefix_count : global_count) - first;
    return {false, first, left < block_n ? left : block_n};
  }
};

// The key tiles of the backward pass: compact global tiles first (tile 0 holds the
// earliest keys, hence the most queries: launched first), then contiguous local tiles
// over [0, T). Each comes with the query range [query_first, query_end) that sees it.
struct KeyTileWork {
  KeyTile keys;
  int query_first;
  int query_end;
  RT_HOST_DEVICE bool empty() const { return query_first >= query_end; }
};

struct BackwardPlan {
  int global_count;  // count_below(T)
  int global_tiles;
  int local_tiles;

  RT_HOST_DEVICE static BackwardPlan of(const KeySets& s, int block_n) {
    BackwardPlan p{};
    p.global_count = s.count_below(s.seq);
    p.global_tiles = (p.global_count + block_n - 1) / block_n;
    p.local_tiles = s.has_local ? (s.seq + block_n - 1) / block_n : 0;
    return p;
  }
  RT_HOST_DEVICE int tiles() const { return global_tiles + local_tiles; }

  RT_HOST_DEVICE KeyTileWork work(const KeySets& s, int tile, int block_n) const {
    if (tile < global_tiles) {
      const int first = tile * block_n;
      const int left = global_count - first;
      const KeyTile keys{false, first, left < block_n ? left : block_n};
      return {keys, s.key(first), s.seq};
    }
    const int first = (tile - global_tiles) * block_n;
    const int left = s.seq - first;
    const KeyTile keys{true, first, left < block_n ? left : block_n};
    const int last = first + keys.count;  // one past the tile's last key
    // A tile inside the prefix holds only global keys: nothing of its own to compute.
    if (last <= s.prefix) return {keys, 0, 0};
    const std::int64_t end = std::int64_t{last} + s.window;  // queries up to last - 1 + W
    return {keys, first, end < s.seq ? static_cast<int>(end) : s.seq};
  }
};

}  // namespace ratrain::cuda

