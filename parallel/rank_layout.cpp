// The layout arithmetic of rank_layout.hpp (see its header for the formula and a
// worked example).
#include "parallel/rank_layout.hpp"

#include "runtime/error.hpp"

namespace ratrain {
namespace {

// Distance in world ranks between neighbours on `axis`: the product of the sizes of
// the axes inside it.
int stride_of(const ParallelSizes& sizes, Axis axis) {
  int stride = 1;
  for (const Axis inner : kAxes) {
    if (inner == axis) break;
    stride *= sizes.of(inner);
  }
  return stride;
}

}  // namespace

std::string_view sequence_split_name(SequenceSplit split) {
  switch (split) {
    case SequenceSplit::contiguous: return "contiguous";
    case SequenceSplit::zigzag: return "zigzag";
  }
  return "?";
}

SequenceSplit parse_sequence_split(std::string_view name, std::string_view key) {
  for (const SequenceSplit split : {SequenceSplit::contiguous, SequenceSplit::zigzag})
    if (name == sequence_split_name(split)) return split;
  RT_FAIL(key, ": unknown sequence split '", name, "'; valid: contiguous, zigzag");
}

std::string to_string(const ParallelSizes& sizes) {
  return detail::concat("tp=", sizes.tp, " sp=", sizes.sp, " pp=", sizes.pp, " dp=", sizes.dp);
}

void require_layout_fits(const ParallelSizes& sizes, int world_size) {
  for (const Axis axis : kAxes) {
    const int size = sizes.of(axis);
    RT_REQUIRE(size >= 1 && size <= kMaxAxisSize, "parallel layout ", to_string(sizes), ": ",
               axis_name(axis), " must be in [1, ", kMaxAxisSize, "] (got ", size, ")");
  }
  RT_REQUIRE(sizes.world() == world_size, "parallel layout ", to_string(sizes),
             " needs tp*sp*pp*dp = ", sizes.world(), " ranks but the world has ", world_size);
}

RankPlacement place_rank(const ParallelSizes& sizes, int world_size, int world_rank) {
  require_layout_fits(sizes, world_size);
  RT_REQUIRE(world_rank >= 0 && world_rank < world_size, "world rank ", world_rank,
             " is outside a world of ", world_size, " ranks");

  // Peel the coordinates off innermost first: rank = ((dp*PP + pp)*SP + sp)*TP + tp.
  RankCoords coords;
  int rest = world_rank;
  coords.tp = rest % sizes.tp;
  rest /= sizes.tp;
  coords.sp = rest % sizes.sp;
  rest /= sizes.sp;
  coords.pp = rest % sizes.pp;
  coords.dp = rest / sizes.pp;

  RankPlacement placement{.coords = coords, .groups = {}};
  for (const Axis axis : kAxes) {
    const int stride = stride_of(sizes, axis);
    const int first = world_rank - coords.of(axis) * stride;  // the member with coordinate 0
    std::vector<int>& members = placement.groups[static_cast<int>(axis)];
    members.reserve(sizes.of(axis));
    for (int k = 0; k < sizes.of(axis); ++k) members.push_back(first + k * stride);
  }
  return placement;
}

}  // namespace ratrain
