#include "model/flops.hpp"

namespace ratrain {

double mean_visible_keys(const Sparsity& rule, std::int64_t seq_len) {
  if (rule.is_dense()) return static_cast<double>(seq_len + 1) / 2.0;
  std::int64_t total = 0;
  for (std::int64_t i = 0; i < seq_len; ++i) for_each_visible_key(rule, i, [&](std::int64_t) { ++total; });
  return static_cast<double>(total) / static_cast<double>(seq_len);
}

double training_flops_per_token(const ModelConfig& c, std::int64_t seq_len, AttentionMode mode) {
  const double d = static_cast<double>(c.d_model);
  const double per_layer_weights = (6.0 + 2.0 * static_cast<double>(c.ffn_mult)) * d * d;
  double flops = 6.0 * (per_layer_weights * static_cast<double>(c.num_layers) +
                        static_cast<double>(c.vocab_size) * d);
  for (const Sparsity& rule : c.layer_rules(mode))
    flops += 3.0 * 4.0 * d * mean_visible_keys(rule, seq_len);
  return flops;
}

}  // namespace ratrain
