// Resuming a run (checkpoint.resume): choosing the checkpoint, verifying it with every
// rank taking a share of the shard files, agreeing on the outcome, and loading it.
//
// checkpoint.resume = none: a fresh start. auto: the checkpoint `latest` names under
// checkpoint.dir, or a fresh start if there is none. A folder: that checkpoint (or, if
// it holds a `latest` file, the one it names).
//
// All ranks agree: each verifies its share (checkpoint_reader.hpp), and the first
// failure found by any rank is sent to every rank, so each one either loads the same
// checkpoint or fails with the same message (naming the file and the dataset). With
// resume = auto and checkpoint.fallback = true a checkpoint that fails verification is
// passed over for the next older complete one, with a warning.
#pragma once

#include <optional>

#include "io/checkpoint_meta.hpp"
#include "io/run_config.hpp"

namespace ratrain {

// Loads the chosen checkpoint into `store` and `optimizer` (this rank's parts, under any
// layout) and returns its meta, or nullopt for a fresh start. Collective over `world`
// (every rank of the job).
std::optional<CheckpointMeta> resume_from_checkpoint(const CheckpointSettings& settings,
                                                     const Group& world,
                                                     const ParallelContext& ctx,
                                                     ParamStore& store, AdamW& optimizer);

}  // namespace ratrain
