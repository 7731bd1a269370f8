#include "model/model_config.hpp"

#include "runtime/error.hpp"

namespace ratrain {

std::int64_t ModelConfig::num_parameters() const {
  const std::int64_t d = d_model;
  const std::int64_t per_layer = 5 * d * d + d * d + 2 * ffn_dim() * d + 2 * d;
  return vocab_size * d + num_layers * per_layer + d;
}

void ModelConfig::validate() const {
  RT_REQUIRE(vocab_size > 0, "model.vocab_size must be positive (got ", vocab_size, ")");
  RT_REQUIRE(d_model > 0 && num_heads > 0 && num_layers > 0 && ffn_mult > 0,
             "model.d_model, num_heads, num_layers and ffn_mult must be positive");
  RT_REQUIRE(d_model % num_heads == 0, "model.d_model (", d_model,
             ") must be divisible by model.num_heads (", num_heads, ")");
  RT_REQUIRE(head_dim() % 2 == 0, "the head dimension d_model/num_heads = ", head_dim(),
             " must be even for rotate-half RoPE");
  RT_REQUIRE(rope_base > 1.0, "model.rope_base must be > 1 (got ", rope_base, ")");
  RT_REQUIRE(static_cast<std::int64_t>(sparse_rules.size()) == num_layers,
             "need one sparse rule per layer: ", sparse_rules.size(), " rules for ", num_layers,
             " layers");
  for (std::size_t l = 0; l < sparse_rules.size(); ++l) {
    const Sparsity& s = sparse_rules[l];
    RT_REQUIRE(s.dilation >= 1 || s.dilation == -1, "layer ", l, ": dilation must be >= 1 or -1 "
               "(local only), got ", s.dilation);
    RT_REQUIRE(s.window >= 0 && s.initial >= 0, "layer ", l,
               ": window and initial must be >= 0, got W=", s.window, " P=", s.initial);
  }
}

std::vector<Sparsity> ModelConfig::layer_rules(AttentionMode mode) const {
  if (mode == AttentionMode::sparse) return sparse_rules;
  return std::vector<Sparsity>(static_cast<std::size_t>(num_layers), Sparsity::dense());
}

std::vector<Sparsity> make_layer_rules(std::int64_t num_layers,
                                       const std::vector<std::int64_t>& dilation,
                                       const std::vector<std::int64_t>& window,
                                       const std::vector<std::int64_t>& initial) {
  auto pick = [num_layers](const std::vector<std::int64_t>& values, const char* what,
                           std::int64_t layer) {
    RT_REQUIRE(values.size() == 1 || static_cast<std::int64_t>(values.size()) == num_layers,
               what, " lists ", values.size(), " values; give one, or one per layer (",
               num_layers, ")");
    return static_cast<int>(values.size() == 1 ? values[0] : values[static_cast<std::size_t>(layer)]);
  };
  std::vector<Sparsity> rules;
  for (std::int64_t l = 0; l < num_layers; ++l)
    rules.push_back({pick(dilation, "dilation", l), pick(window, "window", l),
                     pick(initial, "initial", l)});
  return rules;
}

std::string attention_mode_name(AttentionMode mode) {
  return mode == AttentionMode::dense ? "dense" : "sparse";
}

}  // namespace ratrain
