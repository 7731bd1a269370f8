// Training batches cut from a token stream (RATPLUS.md "Data").
//
// Sample s of a dataset is the T+1 tokens [s*T, s*T + T + 1): consecutive samples
// overlap by one token, so every token except the first is a label exactly once per
// epoch. A dataset of n tokens holds (n - 1) / T samples. Within a sample, ids are the
// first T tokens and labels the last T; the label after an EOS token is -100 (ignored
// by the loss), so no document is trained to predict the start of the next one.
//
// Worked example, T = 4, EOS = 2, tokens 10 11 2 12 13 14 15 16 17 ...:
//   sample 0 = tokens[0, 5) = 10 11  2 12 13  -> ids    10 11    2 12
//                                             -> labels 11  2 -100 13
//   sample 1 = tokens[4, 9) = 13 14 15 16 17  -> ids 13 14 15 16, labels 14 15 16 17
#pragma once

#include <cstdint>

#include "io/sampler.hpp"
#include "io/token_dataset.hpp"
#include "runtime/tensor.hpp"

namespace ratrain {

struct Batch {
  Tensor ids;     // (B, T) i32
  Tensor labels;  // (B, T) i32, -100 = ignored
};

// Number of samples of T+1 tokens in `data`; an error naming the file, its size and T
// if it holds fewer than T+1 tokens.
std::int64_t num_samples(const TokenDataset& data, std::int64_t seq_len);

// rows (B, T+1) i32 -> ids = rows[:, :T], labels = rows[:, 1:] with labels[b, t] = -100
// where ids[b, t] == eos_id. eos_id < 0 disables the masking.
Batch batch_from_rows(const Tensor& rows, std::int32_t eos_id);

// The batch of the `batch_size` samples at global indices first_global_sample, ...,
// first_global_sample + batch_size - 1 of `order` (row b = order.sample_at(first + b)).
// `order` must not cover more samples than the dataset holds.
Batch make_batch(const TokenDataset& data, const SampleOrder& order,
                 std::int64_t first_global_sample, std::int64_t batch_size, std::int64_t seq_len,
                 std::int32_t eos_id);

}  // namespace ratrain
