// The index arithmetic of dilated_key_plan.hpp (see its worked example).
#include "parallel/dilated_key_plan.hpp"

#include <algorithm>

#include "runtime/error.hpp"

namespace ratrain {
namespace {

// The four ranges of the key set of `rank`'s chunk (file comment of the header); the
// positions are left to plan_dilated_keys.
DilatedKeyPlan key_ranges(const Sparsity& rule, int rank, std::int64_t chunk) {
  RT_REQUIRE(rule.dilation != 1, "dilated sequence-parallel attention: a dense rule (D = 1) "
             "sees every earlier key, which ring attention serves instead");
  RT_REQUIRE(rank >= 0 && chunk > 0, "dilated sequence-parallel attention: rank ", rank,
             " and chunk length ", chunk, " must be >= 0 and > 0");
  const std::int64_t begin = rank * chunk;
  const std::int64_t prefix_end = std::min<std::int64_t>(rule.initial, begin);
  const std::int64_t halo_begin = std::max<std::int64_t>(prefix_end, begin - rule.window);
  DilatedKeyPlan plan;
  plan.prefix = {0, prefix_end};
  plan.gap = {prefix_end, halo_begin};
  plan.halo = {halo_begin, begin};
  plan.own = {begin, begin + chunk};
  return plan;
}

void append(std::vector<std::int64_t>& positions, const std::vector<std::int64_t>& more) {
  positions.insert(positions.end(), more.begin(), more.end());
}

IndexRange intersect(IndexRange a, IndexRange b) {
  const std::int64_t begin = std::max(a.begin, b.begin);
  return {begin, std::max(begin, std::min(a.end, b.end))};
}

}  // namespace

std::int64_t DilatedKeyPlan::index_of(std::int64_t position) const {
  const auto it = std::lower_bound(positions.begin(), positions.end(), position);
  RT_ASSERT(it != positions.end() && *it == position);
  return it - positions.begin();
}

DilatedKeyPlan plan_dilated_keys(const Sparsity& rule, int rank, int ranks, std::int64_t chunk) {
  RT_REQUIRE(rank < ranks, "plan_dilated_keys: rank ", rank, " of ", ranks);
  DilatedKeyPlan plan = key_ranges(rule, rank, chunk);
  append(plan.positions, indices_of(plan.prefix));
  append(plan.positions, chunk_ends_in(plan.gap, rule.dilation));
  append(plan.positions, indices_of(plan.halo));
  append(plan.positions, indices_of(plan.own));
  plan.keys_received = plan.prefix.size() + plan.halo.size() +
                       (ranks - 1) * chunk_end_capacity(rule.dilation, chunk);
  return plan;
}

std::vector<std::int64_t> exchanged_positions(const Sparsity& rule, std::int64_t chunk,
                                              int owner, int requester) {
  std::vector<std::int64_t> positions;
  if (owner >= requester) return positions;  // keys flow only to later chunks
  const DilatedKeyPlan wanted = key_ranges(rule, requester, chunk);
  const IndexRange owned{owner * chunk, (owner + 1) * chunk};
  append(positions, indices_of(intersect(wanted.prefix, owned)));
  append(positions, indices_of(intersect(wanted.halo, owned)));
  return positions;
}

std::vector<std::int64_t> chunk_ends_in(IndexRange range, int dilation) {
  std::vector<std::int64_t> ends;
  if (dilation <= 1) return ends;
  const std::int64_t D = dilation;
  // The smallest j = m D - 1 >= range.begin.
  for (std::int64_t j = (range.begin + D) / D * D - 1; j < range.end; j += D) ends.push_back(j);
  return ends;
}

std::int64_t chunk_end_capacity(int dilation, std::int64_t chunk) {
  return dilation > 1 ? (chunk + dilation - 1) / dilation : 0;
}

ChunkEndSlot chunk_end_slot(std::int64_t j, int dilation, std::int64_t chunk) {
  RT_ASSERT(dilation > 1 && (j + 1) % dilation == 0);
  const int owner = static_cast<int>(j / chunk);
  return {owner, (j + 1) / dilation - 1 - owner * chunk / dilation};
}

}  // namespace ratrain
