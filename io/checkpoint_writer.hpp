// Writing one rank's shard file of a checkpoint (format in checkpoint_format.hpp), in
// two halves so that training waits only for the first:
// - take_shard_snapshot, on the training thread at a step boundary: copies the rank's
//   ZeRO-1 shard of the optimizer values and moments to new host buffers (from the GPU
//   where they live there). Training may change the model as soon as it returns.
// - write_shard, on the checkpoint thread: checksums and writes the snapshot.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "io/checkpoint_format.hpp"
#include "model/adamw.hpp"
#include "parallel/parallel_context.hpp"

namespace ratrain {

struct ShardSnapshot {
  int rank = 0;  // world rank: the file is shard_<rank>.h5
  RankCoords coords;
  ParallelSizes layout;
  std::int64_t iteration = 0;
  std::vector<ShardPiece> pieces;  // none on ranks with sp > 0 (replicas, see the format)
  // (S,) host copies of the shard by StateBuffer: the optimizer values of the shard's
  // ranges, then the two moments; pieces[i] starts at its shard_offset in each.
  std::array<Tensor, kStateBuffers.size()> buffers;
};

// This rank's share of the checkpoint of iteration `iteration`. Local: no communication.
// (AdamW is not const only because its moment accessors are not.)
ShardSnapshot take_shard_snapshot(const ParamStore& store, AdamW& optimizer,
                                  const ParallelContext& ctx, std::int64_t iteration);

// Writes `snapshot` to a new file `path`: every piece of every buffer with its CRC-32,
// the pieces' descriptions, and the rank's place in the layout as root attributes.
void write_shard(const std::string& path, const ShardSnapshot& snapshot);

}  // namespace ratrain
