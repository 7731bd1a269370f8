// Where each element of a parameter part lies in the global tensor (model/param_store.hpp
// ShardSpec: one dimension of the global tensor is `segments` equal blocks and the part
// holds entries [begin, begin + length) of each). Plain index arithmetic for host and
// device: ParamEntry::global_index, the parts <-> global copies and the initialisation
// kernels (ops::fill_normal) all use this one form.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define RT_PART_INDEX_HD __host__ __device__
#else
#define RT_PART_INDEX_HD
#endif

namespace ratrain {

struct PartIndexMap {
  // The part's element i = (outer * local_extent + c) * inner + rest, where only the
  // coordinate c along the cut dimension differs from the global tensor's. The defaults
  // map every i to itself (the whole tensor).
  std::int64_t inner = 1;
  std::int64_t local_extent = 1;
  std::int64_t global_extent = 1;
  std::int64_t segment_extent = 1;  // global_extent / segments
  std::int64_t begin = 0;
  std::int64_t length = 1;

  RT_PART_INDEX_HD std::int64_t global(std::int64_t i) const {
    const std::int64_t rest = i % inner, c = (i / inner) % local_extent,
                       outer = i / (inner * local_extent);
    const std::int64_t segment = c / length, within = c % length;
    const std::int64_t global_c = segment * segment_extent + begin + within;
    return (outer * global_extent + global_c) * inner + rest;
  }
};

}  // namespace ratrain
