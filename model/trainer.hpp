// One training iteration (one global batch) under a schedule (RATPLUS.md "Training
// schedule"): joint pretraining runs a sparse forward/backward + optimizer step and
// then a dense one on the same batch; adaptation runs the model's sparse rule only;
// dense runs dense only. Both steps of a joint iteration use the iteration's LR.
//
// Gradient accumulation: a rank's rows are processed `micro_batch` rows at a time
// (M = rows / micro_batch micro-batches, the pipeline's unit) into the gradient buffer
// with grad_scale = 1 / (valid labels of the whole batch), so the accumulated gradient
// is exactly that of the mean loss over the batch.
//
// Parallel layouts: every rank is given the whole batch and works on its block of it
// (parallel/token_split.hpp: rows by dp, positions by sp under the split of the step's
// pass, RatLM::sequence_split; every pipeline stage takes the same block and the model
// passes it through the stages); the valid-label count comes
// from the whole batch, so every rank scales by the same number, and the loss sums of
// the blocks are added over dp and sp (the model returns the last stage's on every
// stage). Results are the same on every rank. The trainer connects the model's report of
// final gradients (RatLM::GradientsFinal) to the optimizer, so that the data-parallel
// reduce-scatter of a gradient bucket overlaps the rest of the backward pass.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/adamw.hpp"
#include "model/lr_schedule.hpp"
#include "model/rat_lm.hpp"

namespace ratrain {

enum class Schedule { joint, dense, sparse };
// Parses "joint" | "dense" | "sparse"; throws naming the valid choices.
Schedule parse_schedule(const std::string& name);
std::string schedule_name(Schedule schedule);
// The attention modes of one iteration, in order.
std::vector<AttentionMode> schedule_modes(Schedule schedule);

struct ModeStepResult {
  AttentionMode mode = AttentionMode::dense;
  double loss = 0;       // mean over valid labels, before the update
  double grad_norm = 0;  // global norm before clipping
  std::int64_t valid = 0;
};

struct IterationResult {
  std::int64_t iter = 0;
  double lr = 0;
  std::vector<ModeStepResult> steps;  // one per mode of the schedule
};

class Trainer {
 public:
  // micro_batch: rows per forward/backward, train.micro_batch (0 = all of this rank's
  // rows at once).
  Trainer(RatLM& model, AdamW& optimizer, LrSchedule lr, Schedule schedule,
          std::int64_t micro_batch = 0);

  // ids, labels: (B, T) i32 on the host, the whole batch. Runs iteration `iter()` and
  // advances it.
  IterationResult step(const Tensor& ids, const Tensor& labels);
  std::int64_t iter() const { return iter_; }
  void set_iter(std::int64_t iter) { iter_ = iter; }

 private:
  ModeStepResult optimizer_step(const Tensor& ids, const Tensor& labels, AttentionMode mode,
                                double lr);

  RatLM& model_;
  AdamW& optimizer_;
  LrSchedule lr_;
  Schedule schedule_;
  std::int64_t micro_batch_;
  std::int64_t iter_ = 0;
};

}  // namespace ratrain
