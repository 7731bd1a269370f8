// AdamW over the flat parameter buffer, with global-norm gradient clipping before each
// step (RATPLUS.md "Optimizer"; PyTorch's AdamW and clip_grad_norm_ semantics).
// Moments live in flat buffers like the gradients (the model dtype on the CPU, f32 on
// the GPU); the update goes to ParamStore::optimizer_values(), the f32 master copy where
// the values are bf16, which is then published to the values.
#pragma once

#include <cstdint>

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

  // Clips the gradients to `clip_norm` and applies one update at `lr`.
  // Returns the global gradient norm before clipping.
  double step(double lr);

  std::int64_t steps_taken() const { return steps_; }
  Tensor& first_moment() { return m_; }
  Tensor& second_moment() { return v_; }
  const AdamWConfig& config() const { return config_; }

 private:
  ParamStore& store_;
  AdamWConfig config_;
  const ParallelContext& ctx_;
  Tensor m_, v_;  // (total,) like the parameters
  std::int64_t steps_ = 0;
};

}  // namespace ratrain
