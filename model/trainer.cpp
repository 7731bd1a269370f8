#include "model/trainer.hpp"

#include <algorithm>

#include "parallel/token_split.hpp"

namespace ratrain {

Schedule parse_schedule(const std::string& name) {
  if (name == "joint") return Schedule::joint;
  if (name == "dense") return Schedule::dense;
  if (name == "sparse") return Schedule::sparse;
  RT_FAIL("unknown training schedule '", name, "'; valid: joint, dense, sparse");
}

std::string schedule_name(Schedule schedule) {
  switch (schedule) {
    case Schedule::joint: return "joint";
    case Schedule::dense: return "dense";
    case Schedule::sparse: return "sparse";
  }
  return "?";
}

std::vector<AttentionMode> schedule_modes(Schedule schedule) {
  switch (schedule) {
    case Schedule::joint: return {AttentionMode::sparse, AttentionMode::dense};
    case Schedule::dense: return {AttentionMode::dense};
    case Schedule::sparse: return {AttentionMode::sparse};
  }
  return {};
}

Trainer::Trainer(RatLM& model, AdamW& optimizer, LrSchedule lr, Schedule schedule,
                 std::int64_t micro_batch)
    : model_(model), optimizer_(optimizer), lr_(lr), schedule_(schedule), micro_batch_(micro_batch) {
  lr_.validate();
  RT_REQUIRE(micro_batch >= 0, "train.micro_batch must be >= 0 (got ", micro_batch, ")");
}

ModeStepResult Trainer::optimizer_step(const Tensor& ids, const Tensor& labels,
                                       AttentionMode mode, double lr) {
  const ParallelContext& ctx = model_.context();
  // The pass's own cut: a joint iteration's sparse and dense passes may split differently.
  const SequenceSplit split = model_.sequence_split(mode);
  const Tensor local_ids = local_tokens(ids, ctx, split),
               local_labels = local_tokens(labels, ctx, split);
  const std::int64_t rows = local_ids.dim(0);
  const std::int64_t micro_rows = micro_batch_ > 0 ? std::min(micro_batch_, rows) : rows;
  RT_REQUIRE(rows % micro_rows == 0, "the rows of a rank (", rows, ") must be divisible by "
             "train.micro_batch (", micro_rows, ")");
  ModeStepResult result;
  result.mode = mode;
  result.valid = ops::count_valid_labels(labels);
  RT_REQUIRE(result.valid > 0, "a batch has no valid labels (all -100)");
  const double grad_scale = 1.0 / static_cast<double>(result.valid);

  model_.params().zero_grads();
  // The optimizer starts summing each gradient bucket over dp once the backward pass
  // has finished it.
  const RatLM::GradientsFinal to_optimizer = [this](std::int64_t begin, std::int64_t end) {
    optimizer_.gradients_final(begin, end);
  };
  const double loss_sum = model_.forward_backward(local_ids, local_labels, mode, grad_scale,
                                                  static_cast<int>(rows / micro_rows),
                                                  to_optimizer)
                              .loss_sum;
  result.loss = sum_over_token_blocks(loss_sum, ctx) * grad_scale;
  result.grad_norm = optimizer_.step(lr);
  return result;
}

IterationResult Trainer::step(const Tensor& ids, const Tensor& labels) {
  IterationResult out;
  out.iter = iter_;
  out.lr = lr_.at(iter_);
  for (AttentionMode mode : schedule_modes(schedule_))
    out.steps.push_back(optimizer_step(ids, labels, mode, out.lr));
  ++iter_;
  return out;
}

}  // namespace ratrain
