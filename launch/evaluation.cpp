#include "launch/evaluation.hpp"

#include <algorithm>

#include "io/batch.hpp"
#include "io/sampler.hpp"
#include "parallel/token_split.hpp"

namespace ratrain {

double validation_loss(RatLM& model, const TokenDataset& data, const EvalShape& shape,
                       AttentionMode mode) {
  const std::int64_t samples = num_samples(data, shape.seq_len);
  const std::int64_t batches = std::min(shape.batches, samples / shape.batch_size);
  RT_REQUIRE(batches > 0, "validation file '", data.path(), "' holds ", samples,
             " samples of ", shape.seq_len, " tokens, fewer than one batch of ", shape.batch_size);
  const SampleOrder in_order(samples, 0, /*shuffle=*/false);
  const ParallelContext& ctx = model.context();
  const SequenceSplit split = model.sequence_split(mode);  // the pass's cut of the positions
  double loss_sum = 0, valid = 0;
  for (std::int64_t b = 0; b < batches; ++b) {
    const Batch batch = make_batch(data, in_order, b * shape.batch_size, shape.batch_size,
                                   shape.seq_len, shape.eos_id);
    const auto r = model.forward(local_tokens(batch.ids, ctx, split),
                                 local_tokens(batch.labels, ctx, split), mode);
    loss_sum += r.loss_sum;
    valid += static_cast<double>(r.valid);
  }
  // Each rank scored its block of every batch (rows by dp, positions by sp, either split:
  // the loss is a sum over tokens). Under pipeline parallelism the forward pass ran
  // through the stages and every stage returned the last stage's numbers, so there is
  // nothing to add over pp.
  loss_sum = sum_over_token_blocks(loss_sum, ctx);
  valid = sum_over_token_blocks(valid, ctx);
  return loss_sum / std::max(valid, 1.0);
}

}  // namespace ratrain
