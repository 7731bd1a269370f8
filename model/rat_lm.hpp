// The RAT+ language model: token embedding -> L RatBlocks -> final RMSNorm -> logits
// through the head tied to the embedding; loss = mean cross-entropy over labels that
// are not -100 (RATPLUS.md "Model").
//
// A batch is run as micro-batches (gradient accumulation): each keeps its activations
// from its forward until its backward. With recompute on, only each layer's input is
// kept through the forward pass and one shared BlockActivations is refilled per layer
// during backward: activation memory drops from O(L * 30 d) to O(L * d + 30 d) per token.
//
// Parallel layouts (DESIGN.md "Parallel layout"): the model holds this rank's part of
// every parameter of its pipeline stage (tensor parallelism: a block of heads and of the
// FFN, a range of the vocabulary; pipeline parallelism: a range of layers, and the
// embedding and/or the final norm and tied head, model/pipeline_stage.hpp) and works on
// the tokens it is given, this rank's part of the batch and of the sequence (the trainer
// cuts them, under the split sequence_split(mode) names for the pass: zigzag chunks for
// a dense pass, contiguous ones otherwise; each micro-batch's rows are reordered
// piece-major for the layers, parallel/sequence_split.hpp). A stage runs its
// micro-batches in 1F1B order, passing activations forward and their gradients back
// (model/pipeline_plan.hpp); with one stage that order is
// F0 B0 F1 B1 ..., plain gradient accumulation. The stage's forward and backward
// functions are the model's only forward and backward, whatever the layout. Losses and
// gradients it returns are this rank's contributions; summing them over the dp and sp
// groups, and the tied embedding's over the first and last stage, is the optimizer's
// and the trainer's job. So that those sums can start while the backward pass goes on,
// the model reports which gradients are final (GradientsFinal); it knows nothing of
// who listens.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "model/model_config.hpp"
#include "model/param_store.hpp"
#include "model/pipeline_plan.hpp"
#include "model/pipeline_stage.hpp"
#include "model/rat_block.hpp"
#include "parallel/parallel_context.hpp"

namespace ratrain {

class RatLM {
 public:
  // Told during forward_backward that gradient elements [begin, end) of params().grads()
  // are final: this rank writes them no more before the next zero_grads(). Called in the
  // last micro-batch's backward pass, once for each range, as soon as its last write
  // is done: on the last stage the final norm's (and the head's embedding copy, when
  // the stage is not also the first), then each layer's, the last layer first, then on
  // the first stage the embedding's. The trainer connects it to the optimizer's
  // gradient buckets (model/adamw.hpp), whose reduce-scatter then overlaps the backward
  // pass of the earlier layers.
  using GradientsFinal = std::function<void(std::int64_t begin, std::int64_t end)>;

  RatLM(ModelConfig config, DType dtype, Device device = Device::cpu, bool recompute = false,
        ParallelContext ctx = ParallelContext::single_process());
  ~RatLM();  // defined where the buffers are complete

  // The parameters of pipeline stage `stage` that TP rank `tp.rank()` holds; every
  // parameter whole for a group of one and a pipeline of one stage.
  static ParamTable make_param_table(const ModelConfig& config, const Group& tp,
                                     const PipelineStage& stage);

  const ModelConfig& config() const { return config_; }
  ParamStore& params() { return store_; }
  const ParamStore& params() const { return store_; }
  DType dtype() const { return dtype_; }
  const ParallelContext& context() const { return ctx_; }
  const PipelineStage& stage() const { return stage_; }

  // The sequence split of a pass in `mode` (parallel/sequence_split.hpp, pass_split):
  // parallel.sp_split when sp has several ranks and every layer's rule under `mode` is
  // dense, contiguous otherwise. The tokens given to forward_backward and forward for
  // that mode must be cut with it (local_tokens).
  SequenceSplit sequence_split(AttentionMode mode) const;

  // ids, labels: (B, T) i32, this rank's part of the batch (local_tokens under
  // sequence_split(mode), token order), run as `micro_batches` equal
  // micro-batches of B / micro_batches rows. Accumulates grad_scale * d(loss_sum)/d(params)
  // into this stage's gradients (grad_scale = 1/valid labels of the whole optimizer step
  // gives the mean). Returns the loss sum and the number of valid labels of the B rows,
  // the same on every stage. Collective over the pp group (and tp, sp inside the layers).
  // `gradients_final`, if given, hears which gradients are final (GradientsFinal).
  ops::CrossEntropyResult forward_backward(const Tensor& ids, const Tensor& labels,
                                           AttentionMode mode, double grad_scale,
                                           int micro_batches = 1,
                                           const GradientsFinal& gradients_final = {});
  // Forward only, the same on every stage. If `logits` is given it receives (B, T, V) in
  // the model dtype (one process only: under tensor or pipeline parallelism no rank holds
  // every logit).
  ops::CrossEntropyResult forward(const Tensor& ids, const Tensor& labels, AttentionMode mode,
                                  Tensor* logits = nullptr);

 private:
  struct MicroBatch;
  struct StageBuffers;
  class StageRun;

  // The buffers for micro-batches of `rows` rows of `seq` positions, `slots` of them in
  // flight at once.
  StageBuffers& buffers_for(std::int64_t rows, std::int64_t seq, int slots);
  // Runs `plan` over ids, labels (B, T) cut into `micro_batches`; a backward pass scales
  // by `grad_scale`, which a forward-only plan does not take.
  // The last backward pass reports to `gradients_final` (may be empty).
  ops::CrossEntropyResult run_plan(const std::vector<PipelineStep>& plan, const Tensor& ids,
                                   const Tensor& labels, AttentionMode mode,
                                   std::optional<double> grad_scale, int micro_batches,
                                   const GradientsFinal& gradients_final);

  // The stage's passes over one micro-batch. Forward: the embedding of mb's ids on the
  // first stage (else mb's input, received), the stage's layers, the final norm on the
  // last stage.
  void forward_stage(StageBuffers& b, MicroBatch& mb, const std::vector<Sparsity>& rules,
                     SequenceSplit split);
  // The last stage's loss of mb after forward_stage.
  ops::CrossEntropyResult stage_loss(const MicroBatch& mb) const;
  // The same with its gradient: accumulates the head's and the final norm's parameter
  // gradients (scaled by grad_scale) and leaves d loss / d(output of the last layer) in
  // b.d_residual, where backward_stage starts.
  ops::CrossEntropyResult stage_loss_backward(StageBuffers& b, MicroBatch& mb,
                                              double grad_scale);
  // b.d_residual: d loss / d(stage output) in, d loss / d(stage input) out; parameter
  // gradients accumulate; the first stage ends in the embedding's gradient. With
  // `final_reports`, each layer's and the embedding's gradients are reported after their
  // last write.
  void backward_stage(StageBuffers& b, MicroBatch& mb, const std::vector<Sparsity>& rules,
                      SequenceSplit split, const GradientsFinal* final_reports);
  // Reports the gradients of the parameters whose names begin with `prefix` (one
  // parameter, or one layer's, registered one after another) to `final_reports`.
  void report_final(const GradientsFinal& final_reports, const std::string& prefix) const;

  ModelConfig config_;
  ParallelContext ctx_;
  PipelineStage stage_;
  std::int64_t vocab_begin_;  // the first vocabulary row of this rank's embedding part
  DType dtype_;
  Device device_;
  bool recompute_;
  ParamStore store_;
  std::vector<RatBlock> blocks_;  // the stage's layers, first_layer .. end_layer - 1
  std::unique_ptr<StageBuffers> buffers_;
};

}  // namespace ratrain
