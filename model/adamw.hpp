// AdamW over the flat parameter buffer, with global-norm gradient clipping before each
// step (RATPLUS.md "Optimizer"; PyTorch's AdamW and clip_grad_norm_ semantics), as a
// ZeRO-1 distributed optimizer over the data-parallel group (DESIGN.md "DP").
//
// Each step: the gradients of the ranks' sequence chunks are summed over sp; the two
// copies of the tied embedding (first and last pipeline stage, param_store.hpp
// StageCopies) sum their gradients; the flat gradient buffer is reduce-scattered over dp,
// so that dp rank r holds the sum of everyone's gradients for shard r (elements
// [r * S, (r + 1) * S) of the padded flat buffers, S = padded / dp); the norm is summed
// over the shards, the distinct TP parts and the pipeline stages (each parameter once);
// rank r clips and updates its shard of the optimizer values with its shard of the
// moments (the moments exist only for the shard: 1/dp of the memory); the updated shards
// are all-gathered. With every group of one this is plain AdamW on the whole buffer,
// without a copy. Each pipeline stage updates its own parameters; the two copies of the
// embedding see equal gradients and moments, so they stay equal.
//
// The tied gradients are summed in a group of the two stages that hold a copy, not by an
// all-reduce over the whole pp group: the stages between would have to join with a
// vocabulary-sized buffer of zeros and carry its traffic, for nothing. With two stages
// that group is the pp group itself.
//
// Moments have the gradients' dtype (the model dtype on the CPU, f32 on the GPU); the
// update goes to ParamStore::optimizer_values(), the f32 master copy where the values
// are bf16, which is then published to the values. Not yet: bucketed reduce-scatter
// overlapped with the backward pass (it needs non-blocking collectives; one blocking
// reduce-scatter of the whole buffer per step now).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/ops.hpp"
#include "model/param_store.hpp"
#include "parallel/parallel_context.hpp"

namespace ratrain {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double clip_norm = 1.0;  // <= 0 disables clipping
};

class AdamW {
 public:
  AdamW(ParamStore& store, AdamWConfig config, const ParallelContext& ctx);

  // Sums the gradients over sp, the tied copies and dp, clips them to `clip_norm` and
  // applies one update at `lr`. Returns the global gradient norm before clipping (the
  // same on every rank).
  double step(double lr);

  std::int64_t steps_taken() const { return steps_; }
  // (S,) moments of this rank's shard: flat elements [shard_begin(), shard_begin() + S).
  Tensor& first_moment() { return m_; }
  Tensor& second_moment() { return v_; }
  std::int64_t shard_begin() const { return shard_begin_; }
  const AdamWConfig& config() const { return config_; }

 private:
  // Sum of squares of `shard_grads` over the elements whose norm this rank counts.
  double counted_sum_of_squares(const Tensor& shard_grads) const;

  ParamStore& store_;
  AdamWConfig config_;
  const ParallelContext& ctx_;
  std::int64_t shard_begin_, shard_numel_;
  // [begin, end) ranges of the shard, relative to it, that enter the gradient norm: all
  // of it, except on TP ranks other than 0 the parameters every TP rank holds whole
  // (their gradients are identical there and count once), and on the last pipeline
  // stage its copy of the tied embedding (the first stage's counts).
  std::vector<std::pair<std::int64_t, std::int64_t>> counted_;
  // The first and the last stage of this rank's pipeline, where the tied copies are;
  // on the stages between, a group of those stages, never used.
  Group tied_stages_;
  Tensor m_, v_;  // (S,)
  std::int64_t steps_ = 0;
};

}  // namespace ratrain
