// The slice of the (V, C) vocabulary table that one embedding or tied-head launch sees,
// shared by kernels/cuda/embedding.cu and cross_entropy.cu (the device twin of
// cpu::vocab_shard_row). The whole table is the shard at begin 0 holding all V rows; a
// vocab-parallel rank (parallel/vocab_parallel.cpp) holds rows [begin, begin + rows).
// So the full-table kernels and the shard kernels are one kernel each, and differ only
// in which ids are errors: the whole table knows V and rejects ids past it; a shard
// cannot know V, so only negative ids are errors there and an id past its rows is another
// shard's (ops.hpp).
//
// Worked example, V = 1000 in 3 shards (vocab_range of parallel/vocab_parallel.hpp: 334,
// 333 and 333 rows):
//   part(334, 333) holds ids [334, 667): id 500 is row 166; ids 12 and 700 are other
//   shards' (row_of = -1); id -3 is bad. whole(1000): id 500 is row 500; id 1000 is bad.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace ratrain::cuda {

struct VocabShard {
  std::int64_t begin = 0;     // global id of the shard's row 0
  std::int64_t rows = 0;      // Vs
  std::int64_t id_limit = 0;  // ids at or past it are errors: V, or kUnknownVocab

  static constexpr std::int64_t kUnknownVocab = std::numeric_limits<std::int64_t>::max();

  static VocabShard whole(std::int64_t vocab) {
    return {.begin = 0, .rows = vocab, .id_limit = vocab};
  }
  static VocabShard part(std::int64_t begin, std::int64_t rows) {
    return {.begin = begin, .rows = rows, .id_limit = kUnknownVocab};
  }

  __host__ __device__ bool is_bad(std::int32_t id) const { return id < 0 || id >= id_limit; }
  // The shard's row holding the global id, or -1 where it holds no such row (another
  // shard's id, a bad id, the ignore label).
  __host__ __device__ std::int64_t row_of(std::int32_t id) const {
    const std::int64_t row = std::int64_t{id} - begin;
    return row >= 0 && row < rows ? row : -1;
  }
  // The upper bound of "[0, V)" in error messages, worded like the CPU backend's.
  std::string vocab_name() const {
    return id_limit == kUnknownVocab ? std::string("V") : std::to_string(id_limit);
  }
};

}  // namespace ratrain::cuda
