// Validation loss: the mean cross-entropy over the first `batches` batches of a token
// file in its natural order (no shuffling), so every evaluation of a run, and every
// run of the same config, scores the same tokens.
#pragma once

#include <cstdint>

#include "io/token_dataset.hpp"
#include "model/rat_lm.hpp"

namespace ratrain {

struct EvalShape {
  std::int64_t batches = 0, batch_size = 0, seq_len = 0;
  std::int32_t eos_id = -1;
};

// Mean loss over valid labels; the number of batches is capped by the file's size.
// Collective over the model's groups (each rank scores its block of every batch, the
// stages pass activations along); the same value on every rank.
double validation_loss(RatLM& model, const TokenDataset& data, const EvalShape& shape,
                       AttentionMode mode);

}  // namespace ratrain
