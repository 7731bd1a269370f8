// The rank layout of DESIGN.md "Parallel layout" as a pure function (STYLE.md item 5):
// no MPI, no globals, so it is unit-tested against hand-written lists and every rank
// of a job computes the same answer on its own.
//
// World = DP x PP x SP x TP with TP innermost (fastest varying: its ranks are adjacent,
// so on one node, on the fastest links), then SP, then PP, then DP outermost:
//
//   world_rank = ((dp * PP + pp) * SP + sp) * TP + tp
//
// The group of rank r along an axis is the ranks that share r's other three
// coordinates; its members are r's base rank plus k * stride(axis) for k in [0, size),
// where stride(tp) = 1, stride(sp) = TP, stride(pp) = TP*SP, stride(dp) = TP*SP*PP.
//
// Worked example, tp=2 sp=2 pp=2 dp=1 (8 ranks):
//   rank 5 = ((0*2 + 1)*2 + 0)*2 + 1  ->  dp 0, pp 1, sp 0, tp 1
//   tp group {4, 5}   (stride 1: vary tp with pp 1, sp 0 fixed)
//   sp group {5, 7}   (stride 2)
//   pp group {1, 5}   (stride 4)
//   dp group {5}      (dp = 1: a group of one)
//
// Invariants of place_rank's answer: every group lists world ranks in ascending order;
// a rank's index in its group along an axis equals its coordinate on that axis; the
// groups of one axis partition the world (each rank in exactly one of them).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ratrain {

// The four parallel axes, innermost first (the order of the layout formula above).
enum class Axis : std::uint8_t { tp, sp, pp, dp };
inline constexpr std::array<Axis, 4> kAxes = {Axis::tp, Axis::sp, Axis::pp, Axis::dp};
// kAxes[i] == Axis(i): arrays indexed by Axis follow kAxes (STYLE.md item 9).
static_assert([] {
  for (std::size_t i = 0; i < kAxes.size(); ++i)
    if (static_cast<std::size_t>(kAxes[i]) != i) return false;
  return static_cast<std::size_t>(Axis::dp) + 1 == kAxes.size();
}());

constexpr std::string_view axis_name(Axis axis) {
  switch (axis) {
    case Axis::tp: return "tp";
    case Axis::sp: return "sp";
    case Axis::pp: return "pp";
    case Axis::dp: return "dp";
  }
  return "?";
}

// The field of `per_axis` (a struct with fields tp, sp, pp, dp) that belongs to `axis`.
template <typename PerAxis>
constexpr auto& field_of(PerAxis& per_axis, Axis axis) {
  switch (axis) {
    case Axis::tp: return per_axis.tp;
    case Axis::sp: return per_axis.sp;
    case Axis::pp: return per_axis.pp;
    case Axis::dp: break;
  }
  return per_axis.dp;
}

// No real job comes near this many ranks on one axis; the bound keeps world() (the
// product of four sizes) far inside int64 whatever a config file says.
inline constexpr int kMaxAxisSize = 1 << 15;

// How sequence parallelism cuts each sample's T positions over its S ranks
// (parallel/sequence_split.hpp): `contiguous`, rank r holds [r Tc, (r + 1) Tc); `zigzag`,
// T cut into 2S chunks of Tc / 2 and rank r holds chunks r and 2S - 1 - r, which
// balances the causal work of dense attention. The `parallel.sp_split` key.
enum class SequenceSplit : std::uint8_t { contiguous, zigzag };
std::string_view sequence_split_name(SequenceSplit split);
// "contiguous" | "zigzag"; throws naming `key` and the valid choices otherwise.
SequenceSplit parse_sequence_split(std::string_view name, std::string_view key);

// Ranks per axis, and how the sp ranks split a sequence. Also the type of the
// `parallel.*` config keys (io/run_config.hpp).
struct ParallelSizes {
  int tp = 1;
  int sp = 1;
  int pp = 1;
  int dp = 1;
  // The split of a pass whose layers are all dense; other passes split contiguously
  // (sequence_split.hpp, pass_split). Not part of the rank layout: no group depends on it.
  SequenceSplit sp_split = SequenceSplit::zigzag;

  int of(Axis axis) const { return field_of(*this, axis); }
  std::int64_t world() const {
    return std::int64_t{tp} * std::int64_t{sp} * std::int64_t{pp} * std::int64_t{dp};
  }
};

// "tp=2 sp=2 pp=2 dp=1", for error messages and test names.
std::string to_string(const ParallelSizes& sizes);

// A rank's position on each axis, each in [0, size of that axis).
struct RankCoords {
  int tp = 0;
  int sp = 0;
  int pp = 0;
  int dp = 0;

  int of(Axis axis) const { return field_of(*this, axis); }
};

// Where one world rank sits: its coordinates and the world ranks of its four groups.
struct RankPlacement {
  RankCoords coords;
  std::array<std::vector<int>, kAxes.size()> groups;  // indexed by Axis

  const std::vector<int>& group(Axis axis) const { return groups[static_cast<int>(axis)]; }
};

// Requires every size in [1, kMaxAxisSize] and tp*sp*pp*dp == world_size; the errors
// name the sizes.
void require_layout_fits(const ParallelSizes& sizes, int world_size);

// The placement of `world_rank` in a world of `world_size` ranks laid out by `sizes`
// (checked with require_layout_fits; world_rank must be in [0, world_size)).
RankPlacement place_rank(const ParallelSizes& sizes, int world_size, int world_rank);

}  // namespace ratrain
