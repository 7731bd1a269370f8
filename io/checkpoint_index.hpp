// index.h5 of a checkpoint: one HDF5 virtual dataset per global tensor, assembled from
// the pieces in the shard files, so that h5py, h5dump or a loader under another layout
// read every parameter and optimizer moment whole (or any hyperslab of it):
//   params/<name>, exp_avg/<name>, exp_avg_sq/<name>     global shape, every parameter
//   tied_copy/{params,exp_avg,exp_avg_sq}/<name>          the last pipeline stage's copy
//                                                         of the tied embedding (pp > 1)
// The sources are named relative to the folder (shard_3.h5), so the folder may be
// renamed and moved.
//
// Invariant, checked while building: every element of every global tensor comes from
// exactly one stored piece. Whole parameters are taken from TP rank 0's shards (each TP
// rank stores its own copy, and with an uneven vocabulary split their pieces need not
// line up); the pieces of a cut parameter are disjoint by construction.
#pragma once

#include <string>

#include "io/checkpoint_meta.hpp"

namespace ratrain {

// Reads the shard files shard_0 .. shard_<world_size - 1> of `folder` back from disk
// (so the index describes what is there), writes folder/index.h5, and returns every
// piece's checksum as recorded in its file, for meta.json.
ShardChecksums write_checkpoint_index(const std::string& folder, int world_size);

}  // namespace ratrain
