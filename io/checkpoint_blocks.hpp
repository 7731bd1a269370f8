// Where a range of a parameter part's elements lies in the parameter's global tensor, as
// HDF5 hyperslabs: what lets a checkpoint's index.h5 show every rank's pieces as one
// global tensor, and a reader fetch its own part of it whatever layout wrote it.
//
// A rank holds a part of each parameter (ParamEntry: global_shape cut along shard.dim
// into `segments` blocks, of each block entries [begin, begin + length)). ZeRO-1 shards
// cut the flat buffers anywhere, so a checkpoint piece is a range [begin, begin + count)
// of a part's row-major elements. Such a range is, in general, not one hyperslab: it is
// cut into row-major boxes (a fixed prefix of coordinates, a range along one dimension k,
// every later dimension whole), each contiguous in the part; a box is one regular
// hyperslab of the global tensor unless k is the cut dimension and the range crosses a
// segment, where it is cut again at segment boundaries.
//
// Worked example: W (8, 2) cut along dim 0 into 2 segments of 4 rows over two TP ranks;
// rank 1 holds rows 2-3 and 6-7 (begin 2, length 2) as its part (4, 2). Part elements
// [1, 7):
//   element 1      row 0, col 1    -> global row 2, col 1
//   elements 2-5   rows 1-2, whole -> crosses a segment: row 1 -> global row 3 (2-3),
//                                     row 2 -> global row 6 (4-5)
//   element 6      row 3, col 0    -> global row 7, col 0
// tests/unit/io/test_checkpoint_blocks.cpp checks this and, exhaustively, the invariant:
// a block's elements in row-major order are ParamEntry::global_index of its part
// elements.
#pragma once

#include <cstdint>
#include <vector>

#include "io/h5.hpp"
#include "model/param_store.hpp"

namespace ratrain {

// Part elements [part_begin, part_begin + count), in row-major order, are the elements
// `global` selects in the global tensor, in row-major order.
struct GlobalBlock {
  std::int64_t part_begin = 0;
  std::int64_t count = 0;
  h5::Hyperslab global;
};

// The blocks of part elements [begin, begin + count) of `part` (rank >= 1), in order.
std::vector<GlobalBlock> global_blocks(const ParamEntry& part, std::int64_t begin,
                                       std::int64_t count);

// The selection of the whole part in the global tensor: one hyperslab (the segments are
// equally spaced blocks along the cut dimension).
h5::Hyperslab part_selection(const ParamEntry& part);

}  // namespace ratrain
