// The RAT+ attention visibility rule (RATPLUS.md "Visibility rules").
//
// Key j is visible to query i when j <= i and
//   dense (D = 1):        always
//   dilated (D > 1):      i - j <= W  or  j < P  or  (j + 1) % D == 0
//   local only (D = -1):  i - j <= W  or  j < P
// With W = 0 a query still sees itself. The visible set is the disjoint union of
//   prefix      [0, min(P, lo))                      (lo = max(0, i - W))
//   chunk ends  {j in [P, lo) : (j + 1) % D == 0}    (j = D-1, 2D-1, ...; none if D = -1)
//   local       [lo, i]
// Worked example: D = 4, W = 2, P = 1, i = 13 -> lo = 11; prefix {0}; chunk ends
// {3, 7} (11 is not < lo); local {11, 12, 13}.
// Enumerating the union instead of testing every j < i is what makes sparse
// attention cost O(T/D + W + P) per query.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ratrain {

struct Sparsity {
  int dilation = 1;  // D: 1 dense, > 1 dilated, -1 local only
  int window = 0;    // W >= 0
  int initial = 0;   // P >= 0

  static Sparsity dense() { return {}; }
  bool is_dense() const { return dilation == 1; }
  bool operator==(const Sparsity&) const = default;
};

// Calls visit(j) for every key j visible to query i, in increasing order.
template <typename Visit>
inline void for_each_visible_key(const Sparsity& s, std::int64_t i, Visit&& visit) {
  if (s.dilation == 1) {
    for (std::int64_t j = 0; j <= i; ++j) visit(j);
    return;
  }
  const std::int64_t lo = std::max<std::int64_t>(0, i - s.window);
  const std::int64_t prefix_end = std::min<std::int64_t>(s.initial, lo);
  for (std::int64_t j = 0; j < prefix_end; ++j) visit(j);
  if (s.dilation > 1) {
    const std::int64_t D = s.dilation;
    // First chunk end >= max(P, 0): smallest j = mD - 1 with j >= P.
    const std::int64_t first = ((std::max<std::int64_t>(s.initial, 0) + 1 + D - 1) / D) * D - 1;
    for (std::int64_t j = first; j < lo; j += D) visit(j);
  }
  for (std::int64_t j = lo; j <= i; ++j) visit(j);
}

// The plain predicate, used by tests as the definition the enumerator must match.
inline bool is_visible(const Sparsity& s, std::int64_t i, std::int64_t j) {
  if (j > i || j < 0) return false;
  if (s.dilation == 1) return true;
  if (i - j <= s.window || j < s.initial) return true;
  return s.dilation > 1 && (j + 1) % s.dilation == 0;
}

}  // namespace ratrain
