// Writing one rank's shard file of a checkpoint (format in checkpoint_format.hpp), in
// two halves so that training waits for neither:
// - take_shard_snapshot, on the training thread at a step boundary: queues copies of the
//   rank's ZeRO-1 shard of the optimizer values and moments into the run's staging
//   buffers (page-locked host memory when the state is on the GPU) and returns. The
//   copies run on a copy stream while the next step's forward and backward passes run;
//   the next optimizer update waits for them on the device (AdamW::
//   order_next_update_after). On the CPU the copies are done when it returns.
// - write_shard, on the checkpoint thread: waits for the copies, checksums and writes.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint_format.hpp"
#include "model/adamw.hpp"
#include "parallel/parallel_context.hpp"

namespace ratrain {

// (S,) host buffers of a rank's shard, by StateBuffer: the optimizer values of the
// shard's ranges, then the two moments. Made once per run (pinning tens of GiB takes
// seconds) and reused by every save, so a snapshot must be written before the next one
// is taken (CheckpointSaver never lets saves overlap). Empty on ranks with sp > 0, which
// write no pieces (replicas, see the format).
struct ShardStaging {
  std::array<Tensor, kStateBuffers.size()> buffers;
  std::size_t bytes() const;
};
ShardStaging make_shard_staging(const ParamStore& store, const AdamW& optimizer,
                                const ParallelContext& ctx);

struct ShardSnapshot {
  int rank = 0;  // world rank: the file is shard_<rank>.h5
  RankCoords coords;
  ParallelSizes layout;
  std::int64_t iteration = 0;
  std::vector<ShardPiece> pieces;  // none on ranks with sp > 0
  // The staging buffers; pieces[i] starts at its shard_offset in each. Valid once
  // `copies` are done (write_shard waits for them).
  std::array<Tensor, kStateBuffers.size()> buffers;
  std::shared_ptr<const AsyncHostCopies> copies;
};

// This rank's share of the checkpoint of iteration `iteration`, copied into `staging`
// (above). Local: no communication.
ShardSnapshot take_shard_snapshot(const ParamStore& store, AdamW& optimizer,
                                  const ParallelContext& ctx, std::int64_t iteration,
                                  const ShardStaging& staging);

// What write_shard did, for the log: the bytes of the shard's data and the seconds spent
// waiting for the copies from the GPU, computing CRC-32s, and in HDF5 writes.
struct ShardWriteStats {
  std::size_t bytes = 0;
  double copy_wait_s = 0, checksum_s = 0, write_s = 0;
};

// Writes `snapshot` to a new file `path`: every piece of every buffer with its CRC-32,
// the pieces' descriptions, and the rank's place in the layout as root attributes.
ShardWriteStats write_shard(const std::string& path, const ShardSnapshot& snapshot);

}  // namespace ratrain
