// The schema of a ratrain run configuration (INI + `section.key=value` overrides) and
// its translation into typed, validated settings. Every key, its kind, default and
// meaning is listed once in run_config_schema(); `ratrain train --help-config` prints it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "model/adamw.hpp"
#include "model/lr_schedule.hpp"
#include "model/model_config.hpp"
#include "model/trainer.hpp"
#include "parallel/rank_layout.hpp"

namespace ratrain {

struct DataSettings {
  std::string train_path;      // HDF5 token file or flat uint16 .bin stream
  std::string val_path;        // same; empty = no validation
  std::int32_t eos_id = -1;    // -1: from the token file (HDF5); required for .bin
  std::int64_t bin_vocab_size = 0;  // vocabulary of .bin streams (they carry no header)
};

struct TrainSettings {
  Schedule schedule = Schedule::joint;
  std::int64_t seq_len = 0;
  std::int64_t batch_size = 0;
  std::int64_t micro_batch = 0;
  std::int64_t iters = 0;
  Device device = Device::cpu;
  DType dtype = DType::f32;
  std::uint64_t seed = 0;
  double init_std = 0.02;
  bool recompute = false;
  std::string weights;  // model.weights: file to start from / evaluate; empty = fresh init
  std::int64_t stop_at = 0;  // train.stop_at: this launch ends after that iteration; 0 = iters
  // train.hang_timeout_s: a rank whose iteration (or final phase) runs longer ends the job
  // (launch/step_watchdog.hpp); 0 = no watchdog.
  std::int64_t hang_timeout_s = 1800;
};

struct EvalSettings {
  std::int64_t every = 0;    // iterations between validation passes (0 = only at the end)
  std::int64_t batches = 0;  // validation batches per pass
  std::vector<AttentionMode> modes;  // modes `ratrain eval` reports
};

// The checkpoint.* keys (io/checkpoint_saver.hpp, io/checkpoint_resume.hpp).
struct CheckpointSettings {
  std::string dir;           // resolved: <run.dir>/checkpoints when the key is empty
  std::int64_t every = 0;    // iterations between checkpoints; 0 = none
  std::int64_t keep = 3;     // complete checkpoints kept, the newest
  std::string resume;        // "auto" (latest if any), "none", or a checkpoint folder
  bool fallback = false;     // auto: a checkpoint failing verification falls back to the one before
};

struct RunConfig {
  Config raw;  // the resolved key/value set, for the run directory and checkpoints
  ModelConfig model;  // vocab_size 0 until resolved from the tokenizer/dataset
  TrainSettings train;
  LrSchedule lr;
  AdamWConfig optim;
  DataSettings data;
  EvalSettings eval;
  ParallelSizes parallel;  // parallel.tp, sp, pp, dp
  CheckpointSettings checkpoint;
  std::string run_dir;
  std::int64_t log_every = 1;
};

const std::vector<ConfigKey>& run_config_schema();
// Loads, type-checks and validates. `ini_path` may be empty (defaults + overrides).
RunConfig load_run_config(const std::string& ini_path, const std::vector<std::string>& overrides);
// Checks that need the vocabulary (set once the data is known): model.validate and
// the layout divisibility rules. Errors name the config key.
void validate_run_config(const RunConfig& config);

}  // namespace ratrain
