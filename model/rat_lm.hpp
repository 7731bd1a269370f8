// The RAT+ language model: token embedding -> L RatBlocks -> final RMSNorm -> logits
// through the head tied to the embedding; loss = mean cross-entropy over labels that
// are not -100 (RATPLUS.md "Model").
//
// Buffers are sized for one (batch, seq) shape and rebuilt when it changes. With
// recompute on, only each layer's input is kept through the forward pass and one
// shared BlockActivations is refilled per layer during backward: activation memory
// drops from O(L * 30 d) to O(L * d + 30 d) per token.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "kernels/ops.hpp"
#include "model/model_config.hpp"
#include "model/param_store.hpp"
#include "model/rat_block.hpp"

namespace ratrain {

class RatLM {
 public:
  RatLM(ModelConfig config, DType dtype, Device device = Device::cpu, bool recompute = false);
  ~RatLM();  // defined where Buffers is complete

  static ParamTable make_param_table(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  ParamStore& params() { return store_; }
  const ParamStore& params() const { return store_; }
  DType dtype() const { return dtype_; }

  // ids, labels: (B, T) i32. Accumulates grad_scale * d(loss_sum)/d(params) into the
  // gradient buffer (grad_scale = 1/valid labels of the whole optimizer step gives the
  // mean). Returns the loss sum and the number of valid labels of this batch.
  ops::CrossEntropyResult forward_backward(const Tensor& ids, const Tensor& labels,
                                           AttentionMode mode, double grad_scale);
  // Forward only. If `logits` is given it receives (B, T, V) in the model dtype.
  ops::CrossEntropyResult forward(const Tensor& ids, const Tensor& labels, AttentionMode mode,
                                  Tensor* logits = nullptr);

 private:
  struct Buffers;
  Buffers& buffers_for(const Tensor& ids);
  // Runs embedding + all blocks + final norm on ids (N) on the model's device; returns
  // the final normed hidden state.
  const Tensor& run_forward(Buffers& b, const Tensor& ids, const std::vector<Sparsity>& rules);

  ModelConfig config_;
  DType dtype_;
  Device device_;
  bool recompute_;
  ParamStore store_;
  std::vector<RatBlock> blocks_;
  std::unique_ptr<Buffers> buffers_;
};

}  // namespace ratrain
