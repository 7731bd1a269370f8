// The shape of a RAT+ model (RATPLUS.md): sizes, RoPE base, and the per-layer sparse
// attention rule (D, W, P) used whenever a step runs in sparse mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/visibility.hpp"

namespace ratrain {

enum class AttentionMode { dense, sparse };

struct ModelConfig {
  std::int64_t vocab_size = 0;
  std::int64_t d_model = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_layers = 0;
  std::int64_t ffn_mult = 4;
  double rope_base = 10000.0;
  double norm_eps = 1e-6;
  // One rule per layer for sparse mode (hybrid compositions differ per layer).
  std::vector<Sparsity> sparse_rules;

  std::int64_t head_dim() const { return d_model / num_heads; }
  std::int64_t ffn_dim() const { return ffn_mult * d_model; }
  // Number of parameters (tied head counted once).
  std::int64_t num_parameters() const;
  // Throws ratrain::Error naming the first inconsistent field.
  void validate() const;
  // The rule each layer uses under `mode` (dense: D = 1 everywhere).
  std::vector<Sparsity> layer_rules(AttentionMode mode) const;
};

// Expands D, W, P values given once or once per layer into per-layer rules.
// Each list must have 1 or `num_layers` entries.
std::vector<Sparsity> make_layer_rules(std::int64_t num_layers,
                                       const std::vector<std::int64_t>& dilation,
                                       const std::vector<std::int64_t>& window,
                                       const std::vector<std::int64_t>& initial);

std::string attention_mode_name(AttentionMode mode);

}  // namespace ratrain
