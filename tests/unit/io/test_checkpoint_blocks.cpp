// global_blocks / part_selection (io/checkpoint_blocks.hpp): the header's worked
// example, and exhaustively, for parts cut along every dimension into several segments
// and for every element range, that each block's hyperslab visits exactly the global
// positions ParamEntry::global_index gives for its part elements, in order.
#include <gtest/gtest.h>

#include "io/checkpoint_blocks.hpp"

namespace ratrain {
namespace {

ParamEntry part_of(Shape global_shape, ShardSpec spec) {
  ParamTable table;
  table.add("w", std::move(global_shape), InitKind::normal, spec);
  return table.entries().front();
}

// The global row-major indices a hyperslab selects, in row-major order.
std::vector<std::int64_t> selected(const h5::Hyperslab& slab, const Shape& global_shape) {
  const std::size_t rank = global_shape.size();
  std::vector<std::int64_t> out;
  // One coordinate per dimension, each enumerating count x block positions.
  std::vector<std::vector<std::int64_t>> positions(rank);
  for (std::size_t d = 0; d < rank; ++d)
    for (std::int64_t c = 0; c < slab.count[d]; ++c)
      for (std::int64_t b = 0; b < slab.block[d]; ++b)
        positions[d].push_back(slab.start[d] + c * slab.stride[d] + b);
  std::vector<std::size_t> at(rank, 0);
  while (true) {
    std::int64_t index = 0;
    for (std::size_t d = 0; d < rank; ++d) index = index * global_shape[d] + positions[d][at[d]];
    out.push_back(index);
    std::size_t d = rank;
    while (d > 0 && ++at[d - 1] == positions[d - 1].size()) at[--d] = 0;
    if (d == 0) return out;
  }
}

void expect_blocks_match_global_index(const ParamEntry& part, std::int64_t begin,
                                      std::int64_t count) {
  std::int64_t next = begin;
  for (const GlobalBlock& block : global_blocks(part, begin, count)) {
    ASSERT_EQ(block.part_begin, next);
    const std::vector<std::int64_t> global = selected(block.global, part.global_shape);
    ASSERT_EQ(static_cast<std::int64_t>(global.size()), block.count);
    for (std::int64_t i = 0; i < block.count; ++i)
      ASSERT_EQ(global[i], part.global_index(block.part_begin + i))
          << "part element " << block.part_begin + i;
    next += block.count;
  }
  EXPECT_EQ(next, begin + count);
}

TEST(CheckpointBlocks, HeaderExample) {
  // W (8, 2) in 2 segments of 4 rows; TP rank 1 of 2 holds rows 2-3 and 6-7.
  const ParamEntry part = part_of({8, 2}, {.dim = 0, .segments = 2, .begin = 2, .length = 2});
  const std::vector<GlobalBlock> blocks = global_blocks(part, 1, 6);
  ASSERT_EQ(blocks.size(), 4u);
  const std::vector<std::pair<std::int64_t, std::int64_t>> ranges = {
      {1, 1}, {2, 2}, {4, 2}, {6, 1}};
  const std::vector<std::vector<std::int64_t>> starts = {{2, 1}, {3, 0}, {6, 0}, {7, 0}};
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    EXPECT_EQ(blocks[b].part_begin, ranges[b].first) << b;
    EXPECT_EQ(blocks[b].count, ranges[b].second) << b;
    EXPECT_EQ(blocks[b].global.start, starts[b]) << b;
  }
}

TEST(CheckpointBlocks, EveryRangeOfEveryCutMatchesGlobalIndex) {
  const Shape global = {6, 4, 6};
  std::vector<ShardSpec> specs = {ShardSpec::whole()};
  for (int dim = 0; dim < 3; ++dim)
    for (std::int64_t segments : {1, 2})
      for (std::int64_t begin : {0, 1}) {
        const std::int64_t period = global[dim] / segments;
        if (period < 2) continue;
        specs.push_back({.dim = dim, .segments = segments, .begin = begin, .length = period / 2});
      }
  for (const ShardSpec& spec : specs) {
    const ParamEntry part = part_of(global, spec);
    SCOPED_TRACE("dim " + std::to_string(spec.dim) + " segments " + std::to_string(spec.segments) +
                 " begin " + std::to_string(spec.begin));
    for (std::int64_t begin = 0; begin < part.numel; ++begin)
      for (std::int64_t end = begin; end <= part.numel; ++end)
        expect_blocks_match_global_index(part, begin, end - begin);
  }
}

TEST(CheckpointBlocks, WholePartIsOneHyperslab) {
  const ParamEntry part = part_of({10, 3}, {.dim = 0, .segments = 5, .begin = 1, .length = 1});
  const std::vector<std::int64_t> global = selected(part_selection(part), part.global_shape);
  ASSERT_EQ(static_cast<std::int64_t>(global.size()), part.numel);
  for (std::int64_t i = 0; i < part.numel; ++i) EXPECT_EQ(global[i], part.global_index(i));
}

}  // namespace
}  // namespace ratrain
