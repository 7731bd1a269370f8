// The RAT+ language model: token embedding -> L RatBlocks -> final RMSNorm -> logits
// through the head tied to the embedding; loss = mean cross-entropy over labels that
// are not -100 (RATPLUS.md "Model").
//
// Buffers are sized for one (batch, seq) shape and rebuilt when it changes. With
// recompute on, only each layer's input is kept through the forward pass and one
// shared BlockActivations is refilled per layer during backward: activation memory
// drops from O(L * 30 d) to O(L * d + 30 d) per token.
//
// Parallel layouts (DESIGN.md "Parallel layout"): the model holds this rank's part of
// every parameter (tensor parallelism: a block of heads and of the FFN, a range of the
// vocabulary) and works on the tokens it is given, this rank's part of the batch and of
// the sequence (the trainer cuts them). Losses and gradients it returns are this rank's
// contributions; summing them over the dp and sp groups is the optimizer's and the
// trainer's job.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "kernels/ops.hpp"
#include "model/model_config.hpp"
#include "model/param_store.hpp"
#include "model/rat_block.hpp"
#include "parallel/parallel_context.hpp"

namespace ratrain {

class RatLM {
 public:
  RatLM(ModelConfig config, DType dtype, Device device = Device::cpu, bool recompute = false,
        ParallelContext ctx = ParallelContext::single_process());
  ~RatLM();  // defined where Buffers is complete

  // The parameters TP rank `tp.rank()` holds; every parameter whole for a group of one.
  static ParamTable make_param_table(const ModelConfig& config,
                                     const Group& tp = Group::single());

  const ModelConfig& config() const { return config_; }
  ParamStore& params() { return store_; }
  const ParamStore& params() const { return store_; }
  DType dtype() const { return dtype_; }
  const ParallelContext& context() const { return ctx_; }

  // ids, labels: (B, T) i32, this rank's part of the batch. Accumulates grad_scale * d(loss_sum)/d(params) into the
  // gradient buffer (grad_scale = 1/valid labels of the whole optimizer step gives the
  // mean). Returns the loss sum and the number of valid labels of this batch.
  ops::CrossEntropyResult forward_backward(const Tensor& ids, const Tensor& labels,
                                           AttentionMode mode, double grad_scale);
  // Forward only. If `logits` is given it receives (B, T, V) in the model dtype (one
  // process only: under tensor parallelism no rank holds every logit).
  ops::CrossEntropyResult forward(const Tensor& ids, const Tensor& labels, AttentionMode mode,
                                  Tensor* logits = nullptr);

 private:
  struct Buffers;
  Buffers& buffers_for(const Tensor& ids);
  // Runs embedding + all blocks + final norm on ids (N) on the model's device; returns
  // the final normed hidden state.
  const Tensor& run_forward(Buffers& b, const Tensor& ids, const std::vector<Sparsity>& rules);

  ModelConfig config_;
  ParallelContext ctx_;
  std::int64_t vocab_begin_;  // the first vocabulary row of this rank's embedding part
  DType dtype_;
  Device device_;
  bool recompute_;
  ParamStore store_;
  std::vector<RatBlock> blocks_;
  std::unique_ptr<Buffers> buffers_;
};

}  // namespace ratrain
