// Asynchronous checkpoint saves (see checkpoint_saver.hpp).
#include "io/checkpoint_saver.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "io/checkpoint_folder.hpp"
#include "io/checkpoint_format.hpp"
#include "io/checkpoint_index.hpp"
#include "io/checkpoint_writer.hpp"
#include "runtime/log.hpp"

namespace ratrain {
namespace {

bool finished(const std::future<void>& task) {
  return task.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

std::string gibibytes(std::size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  return text;
}

// "16.76 GiB; waited 0.100 s for the copy from the device, CRC-32 5.1 s, written and
// synced in 9.8 s (1.71 GiB/s)": the write bandwidth the checkpoint thread saw.
std::string describe(const ShardWriteStats& stats) {
  char text[160];
  std::snprintf(text, sizeof text,
                "; waited %.3f s for the copy from the device, CRC-32 %.3f s, written and "
                "synced in %.3f s (%.2f GiB/s)",
                stats.copy_wait_s, stats.checksum_s, stats.write_s,
                static_cast<double>(stats.bytes) / (1 << 30) / std::max(stats.write_s, 1e-9));
  return gibibytes(stats.bytes) + text;
}

// World rank 0's part once every shard is on disk: index.h5, meta.json, the commit.
void commit_save(CheckpointMeta meta, const std::string& root, std::int64_t keep) {
  const auto start = std::chrono::steady_clock::now();
  const std::string folder = partial_folder(root, meta.iteration);
  meta.checksums = write_checkpoint_index(folder, static_cast<int>(meta.layout.world()));
  write_file_atomically((std::filesystem::path(folder) / kCheckpointMetaFile).string(),
                        checkpoint_meta_json(meta));
  commit_checkpoint(root, meta.iteration, keep);
  log_info("checkpoint ", checkpoint_folder(root, meta.iteration), " complete (index and commit ",
           seconds_text(seconds_since(start)), ")");
}

}  // namespace

CheckpointSaver::CheckpointSaver(const RunConfig& config, const ParallelContext& ctx, Group world,
                                 std::int64_t data_samples, const ParamStore& store,
                                 AdamW& optimizer)
    : settings_(config.checkpoint),
      config_json_(config.raw.to_json()),
      seed_(config.train.seed),
      data_samples_(data_samples),
      ctx_(ctx),
      world_(std::move(world)),
      store_(store),
      optimizer_(optimizer) {
  if (settings_.every > 0) make_staging();  // else at a save on a stop signal, if any
}

void CheckpointSaver::make_staging() {
  if (staging_) return;
  const auto start = std::chrono::steady_clock::now();
  staging_ = make_shard_staging(store_, optimizer_, ctx_);
  if (staging_->bytes() == 0) return;
  const bool pinned = optimizer_.first_moment().device() == Device::cuda;
  log_info("checkpoints: ", gibibytes(staging_->bytes()), " of ", pinned ? "page-locked " : "",
           "host memory for the shard copy (", seconds_text(seconds_since(start)), ")");
}

CheckpointSaver::~CheckpointSaver() {
  // Never leave a file half-written behind; what failed is reported elsewhere.
  if (task_.valid()) task_.wait();
}

bool CheckpointSaver::due(std::int64_t iterations_done, std::int64_t last) const {
  return settings_.every > 0 && (iterations_done % settings_.every == 0 || iterations_done == last);
}

void CheckpointSaver::save(const TrainingProgress& progress) {
  const auto start = std::chrono::steady_clock::now();  // what training waits, all told
  complete_pending();
  // Worth a warning once it costs more than an iteration's noise.
  if (const double waited = seconds_since(start); waited > 0.1 && world_.rank() == 0)
    log_warn("checkpoint of iteration ", progress.iteration, ": training waited ",
             seconds_text(waited), " for the previous checkpoint to be written (saves never "
             "overlap: it is copied into the same host buffers); checkpoint.every = ",
             settings_.every, " iterations is shorter than a save's write");
  make_staging();
  const std::string folder = partial_folder(settings_.dir, progress.iteration);
  if (world_.rank() == 0) prepare_empty_folder(folder);
  world_.barrier();  // the folder exists before any rank writes into it
  ShardSnapshot snapshot =
      take_shard_snapshot(store_, optimizer_, ctx_, progress.iteration, *staging_);
  pending_ = {.iteration = progress.iteration,
              .optimizer_steps = optimizer_.steps_taken(),
              .data_cursor = progress.data_cursor,
              .data_samples = data_samples_,
              .seed = seed_,
              .layout = ctx_.sizes,
              .checksums = {},
              .config_json = config_json_};
  const std::string path =
      (std::filesystem::path(folder) / shard_file_name(ctx_.world_rank)).string();
  task_ = std::async(std::launch::async, [snapshot = std::move(snapshot), path] {
    const ShardWriteStats stats = write_shard(path, snapshot);
    if (stats.bytes == 0) return;
    log_info("checkpoint shard ", path, ": ", describe(stats));
  });
  state_ = State::writing;
  log_info("checkpoint of iteration ", progress.iteration, ": training blocked ",
           seconds_text(seconds_since(start)), ", writing ", folder, " in the background");
}

void CheckpointSaver::poll() {
  if (state_ == State::committing && finished(task_)) {
    task_.get();  // rethrows a failed commit
    state_ = State::idle;
  }
  if (state_ != State::writing) return;
  const double written = world_.all_reduce_sum(finished(task_) ? 1.0 : 0.0);
  if (written < world_.size()) return;
  task_.get();  // rethrows a failed write
  start_commit();
}

void CheckpointSaver::finish() { complete_pending(); }

void CheckpointSaver::complete_pending() {
  if (state_ == State::writing) {
    task_.get();
    world_.barrier();  // every shard is on disk
    start_commit();
  }
  if (state_ == State::committing) task_.get();
  state_ = State::idle;
}

void CheckpointSaver::start_commit() {
  if (world_.rank() != 0) {
    state_ = State::idle;
    return;
  }
  task_ = std::async(std::launch::async, commit_save, pending_, settings_.dir, settings_.keep);
  state_ = State::committing;
}

}  // namespace ratrain
