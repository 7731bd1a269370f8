// meta.json of a checkpoint (DESIGN.md "Checkpoints (HDF5)"): what a resumed run needs
// besides the tensors, what a reader needs to trust them, and what produced them.
//
//   {"format": 1, "iteration": 10, "optimizer_steps": 20, "data_cursor": 80,
//    "data_samples": 2339, "seed": 1234, "world_size": 2,
//    "layout": {"tp": 2, "sp": 1, "pp": 1, "dp": 1},
//    "versions": {"ratrain": "0.1.0", "hdf5": "1.10.8", "mpi": "Open MPI v4.1.4", ...},
//    "checksums": {"shard_0.h5": {"params/backbone.ln.weight/0": 2864712004, ...}, ...},
//    "config": {"model": {...}, "train": {...}, ...}}
//
// Written by world rank 0 once every shard is on disk (the checksums are read back from
// the shards' crc32 attributes); the loader trusts a dataset only if its bytes have the
// checksum listed here, and a shard only if it holds exactly the datasets listed.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "parallel/rank_layout.hpp"

namespace ratrain {

// shard file name -> dataset -> CRC-32 of its bytes.
using ShardChecksums = std::map<std::string, std::map<std::string, std::uint32_t>>;

struct CheckpointMeta {
  std::int64_t iteration = 0;        // training iterations completed (step_<N>'s N)
  std::int64_t optimizer_steps = 0;  // AdamW steps taken (one per attention mode per iteration)
  std::int64_t data_cursor = 0;      // global sample index of the next batch (io/sampler.hpp)
  std::int64_t data_samples = 0;     // samples per epoch of the data order it indexes
  std::uint64_t seed = 0;            // train.seed: initialisation and data order
  ParallelSizes layout;              // of the run that wrote it (world = layout.world())
  ShardChecksums checksums;
  std::string config_json;           // Config::to_json of the run; written, not read back
};

// The meta.json text, with the versions of ratrain, HDF5, MPI, zlib and the compiler.
std::string checkpoint_meta_json(const CheckpointMeta& meta);
// Parses a meta.json; a missing, unreadable or malformed file is an error naming it.
CheckpointMeta read_checkpoint_meta(const std::string& path);

}  // namespace ratrain
