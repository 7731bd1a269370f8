// AdamW over the flat parameter buffer, with global-norm gradient clipping before each
// step (RATPLUS.md "Optimizer"; PyTorch's AdamW and clip_grad_norm_ semantics), as a
// ZeRO-1 distributed optimizer over the data-parallel group (DESIGN.md "DP").
//
// Each step: the two copies of the tied embedding (first and last pipeline stage,
// param_store.hpp StageCopies) sum their gradients; the flat gradient buffer is
// reduce-scattered over dp in buckets (model/grad_buckets.hpp), so that dp rank r holds
// the sum of everyone's gradients for its shard (block r of every bucket, S = padded / dp
// elements); the shard is summed over sp (each sequence chunk contributed part of every
// gradient); the norm is summed over the shards, the distinct TP parts and the pipeline
// stages (each parameter once); rank r clips and updates its shard of the optimizer
// values with its shard of the moments (the moments exist only for the shard: 1/dp of
// the memory); the updated shards are all-gathered, bucket by bucket. With every group
// of one this is plain AdamW on the whole buffer, without a copy. Each pipeline stage
// updates its own parameters; the two copies of the embedding see equal gradients and
// moments, so they stay equal.
//
// What overlaps the backward pass: the dp reduce-scatter of every bucket without a tied
// copy starts as soon as the backward pass reports the bucket's gradients final
// (gradients_final, wired by the trainer to RatLM's hook) in the last micro-batch, and
// runs while the earlier layers' backward goes on; step() waits for them. Not
// overlapped: the buckets of the tied copies (their cross-stage sum must come first and
// is a blocking call in step(): on the last stage the head's gradient is final long
// before the first stage's embedding gradient, and a blocking sum in the backward pass
// would deadlock the pipeline), the sp sum and the norm.
//
// What overlaps the next forward pass: the all-gathers of the updated values. step()
// starts them and returns; the store's readers complete them (ParamStore::await_values,
// AdamW is the store's PendingValues): the forward pass waits for a layer's buckets just
// before running it (and on the GPU rounds their master values into the bf16 values
// then), so later layers' values arrive while earlier layers compute. The next step()
// and the destructor complete whatever is left.
//
// The sp sum comes after the dp reduce-scatter, not before it as in a sum over sp then
// dp: the ranks of an sp group hold the same stage and TP part, hence the same buckets
// and shards, and sums commute, so the result is the same up to rounding, a bucket need
// not wait for an sp all-reduce before its reduce-scatter can start, and the sp sum
// moves S = padded / dp elements instead of the whole buffer.
//
// The tied gradients are summed in a group of the two stages that hold a copy, not by an
// all-reduce over the whole pp group: the stages between would have to join with a
// vocabulary-sized buffer of zeros and carry its traffic, for nothing. With two stages
// that group is the pp group itself.
//
// Moments have the gradients' dtype (the model dtype on the CPU, f32 on the GPU); the
// update goes to ParamStore::optimizer_values(), the f32 master copy where the values
// are bf16, which is then published to the values.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "kernels/ops.hpp"
#include "model/grad_buckets.hpp"
#include "model/param_store.hpp"
#include "parallel/parallel_context.hpp"
#include "runtime/async_host_copy.hpp"

namespace ratrain {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double clip_norm = 1.0;  // <= 0 disables clipping
  // Gradient bucket size for the data-parallel reduce-scatter (optim.bucket_mb): smaller
  // buckets start earlier in the backward pass, larger ones make fewer, larger messages.
  std::int64_t bucket_bytes = std::int64_t{25} << 20;
};

class AdamW final : private PendingValues {
 public:
  AdamW(ParamStore& store, AdamWConfig config, const ParallelContext& ctx);
  // Completes the all-gathers in flight and detaches from the store.
  ~AdamW() override;
  AdamW(const AdamW&) = delete;  // the store keeps a pointer to it
  AdamW& operator=(const AdamW&) = delete;

  // The backward pass's report (RatLM::GradientsFinal, connected by the trainer): flat
  // gradient elements [begin, end) are final for this step. Starts the dp reduce-scatter
  // of every bucket that this completes, except those of the tied copies.
  void gradients_final(std::int64_t begin, std::int64_t end) {
    buckets_.gradients_final(begin, end);
  }

  // Sums the gradients over the tied copies, dp and sp, clips them to `clip_norm` and
  // applies one update at `lr`. Returns the global gradient norm before clipping (the
  // same on every rank). Without reports from the backward pass every bucket starts here.
  // Under data parallelism the updated values are left in flight (see the header): read
  // them through ParamStore::await_values.
  double step(double lr);
  // How many buckets' updated values are still in flight (0 without data parallelism).
  std::int64_t buckets_in_flight() const;

  std::int64_t steps_taken() const { return steps_; }
  // (S,) moments of this rank's shard; shard_ranges() says which flat element each is.
  Tensor& first_moment() { return m_; }
  Tensor& second_moment() { return v_; }
  const Tensor& first_moment() const { return m_; }
  const Tensor& second_moment() const { return v_; }
  // `reader` copies the shard's values and moments to the host beside the training (an
  // asynchronous checkpoint, io/checkpoint_writer.hpp): the next step's update, the
  // first work that changes them, waits for it on the device; the forward and backward
  // passes before it run concurrently with the copy. One reader at a time.
  void order_next_update_after(std::shared_ptr<const AsyncHostCopies> reader) {
    state_reader_ = std::move(reader);
  }
  // The pieces of this rank's shard: one range with dp = 1 or with a single bucket, else
  // one per bucket.
  const std::vector<ShardRange>& shard_ranges() const { return buckets_.shard(); }
  // Where a contiguous shard begins: the moments are flat elements [shard_begin(),
  // shard_begin() + S). Throws when the shard is several ranges (dp > 1 with several
  // buckets): use shard_ranges() there.
  std::int64_t shard_begin() const;
  const AdamWConfig& config() const { return config_; }
  // Resuming from a checkpoint (io/checkpoint_reader.hpp): the steps already taken, which
  // the bias correction of the next step continues from.
  void restore_steps_taken(std::int64_t steps) { steps_ = steps; }

 private:
  // Sum of squares of `shard_grads` over the elements whose norm this rank counts.
  double counted_sum_of_squares(const Tensor& shard_grads) const;
  // PendingValues: waits for the all-gathers of the buckets that meet [begin, end) and
  // publishes their master values.
  void complete(std::int64_t begin, std::int64_t end) override;

  ParamStore& store_;
  AdamWConfig config_;
  const ParallelContext& ctx_;
  // [begin, end) ranges of the shard, relative to it, that enter the gradient norm: all
  // of it, except on TP ranks other than 0 the parameters every TP rank holds whole
  // (their gradients are identical there and count once), and on the last pipeline
  // stage its copy of the tied embedding (the first stage's counts).
  std::vector<std::pair<std::int64_t, std::int64_t>> counted_;
  // The first and the last stage of this rank's pipeline, where the tied copies are;
  // on the stages between, a group of those stages, never used.
  Group tied_stages_;
  GradBuckets buckets_;
  Tensor m_, v_;  // (S,)
  std::shared_ptr<const AsyncHostCopies> state_reader_;
  // The last step's all-gathers, one per bucket; cleared once every one is complete
  // (waited, its bucket published).
  std::vector<CollectiveRequest> gathers_;
  std::int64_t steps_ = 0;
};

}  // namespace ratrain
