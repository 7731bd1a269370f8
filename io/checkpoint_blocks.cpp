// Part element ranges -> global hyperslabs (see checkpoint_blocks.hpp).
#include "io/checkpoint_blocks.hpp"

#include <algorithm>

namespace ratrain {
namespace {

// Row-major strides of `shape`: elements per step along each dimension.
std::vector<std::int64_t> strides_of(const Shape& shape) {
  std::vector<std::int64_t> strides(shape.size(), 1);
  for (std::size_t d = shape.size() - 1; d > 0; --d) strides[d - 1] = strides[d] * shape[d];
  return strides;
}

// The global coordinate of local coordinate `c` along the cut dimension.
std::int64_t global_coordinate(const ParamEntry& part, std::int64_t c) {
  const ShardSpec& s = part.shard;
  const std::int64_t period = part.global_shape[s.dim] / s.segments;
  return c / s.length * period + s.begin + c % s.length;
}

// Appends the global blocks of `box`, a box of the part (coordinates fixed before
// dimension k, a range along k, whole after k) that starts at part element `first`.
void append_box(const ParamEntry& part, const std::vector<std::int64_t>& strides,
                std::int64_t first, const h5::Hyperslab& box, int k,
                std::vector<GlobalBlock>& out) {
  const ShardSpec& s = part.shard;
  if (s.is_whole()) {
    out.push_back({first, box.numel(), box});
    return;
  }
  const int d = s.dim;
  if (d != k) {
    h5::Hyperslab global = box;
    if (d < k) {
      global.start[d] = global_coordinate(part, box.start[d]);
    } else {  // whole locally: every segment's block, equally spaced
      global.start[d] = s.begin;
      global.stride[d] = part.global_shape[d] / s.segments;
      global.count[d] = s.segments;
      global.block[d] = s.length;
    }
    out.push_back({first, box.numel(), global});
    return;
  }
  // The range along the cut dimension, cut at segment boundaries.
  const std::int64_t lo = box.start[k], hi = lo + box.block[k];
  for (std::int64_t c = lo; c < hi;) {
    const std::int64_t end = std::min(hi, (c / s.length + 1) * s.length);
    h5::Hyperslab global = box;
    global.start[k] = global_coordinate(part, c);
    global.block[k] = end - c;
    out.push_back({first + (c - lo) * strides[k], (end - c) * strides[k], global});
    c = end;
  }
}

}  // namespace

std::vector<GlobalBlock> global_blocks(const ParamEntry& part, std::int64_t begin,
                                       std::int64_t count) {
  RT_ASSERT(!part.shape.empty() && begin >= 0 && count >= 0 && begin + count <= part.numel);
  const Shape& shape = part.shape;
  const std::vector<std::int64_t> strides = strides_of(shape);
  std::vector<GlobalBlock> blocks;
  for (std::int64_t at = begin, end = begin + count; at < end;) {
    // The outermost dimension whose whole steps fit from `at`: at is a multiple of its
    // stride and one step remains. The innermost (stride 1) always qualifies.
    int k = 0;
    while (at % strides[k] != 0 || strides[k] > end - at) ++k;
    const std::int64_t coordinate = at / strides[k] % shape[k];
    const std::int64_t steps = std::min((end - at) / strides[k], shape[k] - coordinate);
    h5::Hyperslab box = h5::Hyperslab::whole(shape);
    for (int i = 0; i <= k; ++i) {
      box.start[i] = at / strides[i] % shape[i];
      box.block[i] = i < k ? 1 : steps;
    }
    append_box(part, strides, at, box, k, blocks);
    at += steps * strides[k];
  }
  return blocks;
}

h5::Hyperslab part_selection(const ParamEntry& part) {
  std::vector<GlobalBlock> blocks;
  append_box(part, strides_of(part.shape), 0, h5::Hyperslab::whole(part.shape), /*k=*/-1, blocks);
  return blocks.front().global;
}

}  // namespace ratrain
