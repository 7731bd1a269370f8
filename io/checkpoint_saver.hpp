// Periodic, asynchronous checkpoints of a training run (DESIGN.md "Checkpoints (HDF5)":
// "Saving copies to host and writes on a background thread so training resumes at
// once").
//
// A save, at a step boundary, on every rank:
//   1. waits for the previous save to finish (saves never overlap);
//   2. world rank 0 empties step_<N>.partial; a barrier;
//   3. queues the copy of the rank's shard into the run's staging buffers
//      (take_shard_snapshot: from the GPU the copy runs beside the next step, which
//      waits for it only before its optimizer update) and returns;
//   4. a background thread waits for the copy and writes and syncs shard_<rank>.h5.
// The staging buffers (page-locked host memory for GPU state) are allocated when the
// saver is made, not at the first save: pinning takes seconds.
// Commit: poll(), once per iteration while a save is being written, asks every rank
// whether its shard is on disk (one all-reduce of a flag); once all are, world rank 0's
// background thread writes index.h5 and meta.json and commits the folder
// (checkpoint_folder.hpp). finish() waits for all of it before the run ends.
//
// Threads: the background thread calls HDF5 and the file system only; every MPI call
// stays on the training thread (MPI_THREAD_FUNNELED). HDF5 calls of the two threads
// take turns (io/h5.hpp). At most one background thread exists at a time.
//
// Errors: a failed write or commit is rethrown on its rank at the next poll(), save()
// or finish(), which ends the job like any other error. The destructor (also reached
// while an error unwinds) waits for a write in flight, so the process never exits with
// a file half-written, but commits nothing.
#pragma once

#include <future>
#include <optional>

#include "io/checkpoint_meta.hpp"
#include "io/checkpoint_writer.hpp"
#include "io/run_config.hpp"

namespace ratrain {

// Where a run stands after an iteration: what a resumed run needs to continue it.
struct TrainingProgress {
  std::int64_t iteration = 0;    // iterations completed
  std::int64_t data_cursor = 0;  // global sample index of the next batch
};

class CheckpointSaver {
 public:
  // Saves `store`'s values and `optimizer`'s state under config.checkpoint (none unless
  // asked: every checkpoint.every iterations, or on a stop signal). `world`: every rank of
  // the job; `data_samples`: samples per epoch of the run's data order.
  CheckpointSaver(const RunConfig& config, const ParallelContext& ctx, Group world,
                  std::int64_t data_samples, const ParamStore& store, AdamW& optimizer);
  CheckpointSaver(const CheckpointSaver&) = delete;
  CheckpointSaver& operator=(const CheckpointSaver&) = delete;
  ~CheckpointSaver();

  // Whether to save after `iterations_done` iterations, in a launch that ends after
  // `last`: every checkpoint.every iterations, and at the end.
  bool due(std::int64_t iterations_done, std::int64_t last) const;
  // Collective over the world: starts the save of `progress` (steps above).
  void save(const TrainingProgress& progress);
  // Collective over the world while a save is being written; call once per iteration.
  void poll();
  // Collective over the world: returns once the last save is committed.
  void finish();

 private:
  enum class State { idle, writing, committing };

  // Waits for the save in flight and commits it. Collective while writing.
  void complete_pending();
  // Every shard is on disk: rank 0 starts the commit of pending_.
  void start_commit();
  // Allocates staging_ unless done.
  void make_staging();

  CheckpointSettings settings_;
  std::string config_json_;
  std::uint64_t seed_;
  std::int64_t data_samples_;
  const ParallelContext& ctx_;
  Group world_;
  const ParamStore& store_;
  AdamW& optimizer_;
  std::optional<ShardStaging> staging_;
  State state_ = State::idle;
  CheckpointMeta pending_;   // of the save in flight; checksums filled by its commit
  std::future<void> task_;   // the background thread's write or commit
};

}  // namespace ratrain
