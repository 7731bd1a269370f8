// Model FLOPs per token of one training step (forward + backward = 3 x forward), the
// numerator of MFU. Matmul FLOPs count 2 per multiply-add:
//   weights:   6 * (14 d^2 per layer) + 6 * V d for the tied head (the embedding
//              lookup itself costs no FLOPs),
//   attention: 3 * 4 d * (mean visible keys per query) per layer (QK^T and PV).
// Mean visible keys: dense (T + 1) / 2; sparse counted exactly by the visibility rule.
#pragma once

#include <cstdint>

#include "model/model_config.hpp"

namespace ratrain {

double mean_visible_keys(const Sparsity& rule, std::int64_t seq_len);
double training_flops_per_token(const ModelConfig& config, std::int64_t seq_len, AttentionMode mode);

}  // namespace ratrain
