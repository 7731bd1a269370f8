// Reading a checkpoint back (format in checkpoint_format.hpp), in two steps that a
// resume runs on every rank (checkpoint_resume.hpp):
// - verify_checkpoint_files: a share of the shard files is checked against meta.json,
//   every listed dataset read whole and its CRC-32 compared, so that a missing,
//   truncated or corrupt shard is found before anything is loaded (index.h5 would read
//   a missing source as NaN without complaint).
// - load_checkpoint_state: the rank's part of every global tensor is read from
//   index.h5 by hyperslab, so the layout that wrote the checkpoint does not matter:
//   under the same layout the bytes are the ones this rank (or, for replicated values,
//   its replica) saved, hence a resumed run continues bit for bit.
#pragma once

#include <optional>
#include <string>

#include "io/checkpoint_meta.hpp"
#include "model/adamw.hpp"
#include "parallel/parallel_context.hpp"

namespace ratrain {

// Checks the shard files of `folder` whose rank r has r % stride == first (and
// index.h5 when first == 0): each exists, opens, and holds every dataset `meta` lists
// for it with the listed checksum. Returns the first problem, naming the file and the
// dataset, or nullopt.
std::optional<std::string> verify_checkpoint_files(const std::string& folder,
                                                   const CheckpointMeta& meta, int first,
                                                   int stride);

// Sets this rank's parameter parts (master copy included), the moments of its ZeRO-1
// shard and the optimizer's step count from checkpoint `folder`. A tensor whose global
// shape differs from the model's is an error naming the dataset.
void load_checkpoint_state(const std::string& folder, const CheckpointMeta& meta,
                           ParamStore& store, AdamW& optimizer, const ParallelContext& ctx);

}  // namespace ratrain
