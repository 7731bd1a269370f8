// Gradient buckets of the ZeRO-1 optimizer (DESIGN.md "DP"; STYLE.md item 7, Megatron's
// param-and-grad buffer): the flat gradient buffer cut into buckets, each reduce-scattered
// over the data-parallel group by one non-blocking call that starts as soon as the
// backward pass has written the bucket's last gradient, while it computes the others.
//
// Layout. Walking the parameter table in order, a bucket closes after the first
// parameter that brings it to at least `bucket_numel` elements, or at the end of the
// table. Its end is rounded up to a multiple of dp, so every bucket's length is a
// multiple of dp and its reduce-scatter is one call with equal blocks. The rounding
// reaches at most dp - 1 elements past the parameter's end, and ParamStore already pads
// the buffer to a multiple of dp: the buckets tile [0, padded) without padding of their
// own, and every parameter keeps its offset. A parameter larger than a bucket ends one.
//
// Shards. Data-parallel rank r owns block r of every bucket: of [begin, begin + n), the
// elements [begin + r n/dp, begin + (r+1) n/dp). Its ZeRO-1 shard (summed gradients,
// moments) is those blocks in bucket order, S = padded / dp elements in all; the block of
// the bucket that begins at `begin` sits at shard offset begin / dp, since every bucket
// before it gave 1/dp of its length.
//
// Worked example: parameters A (7 elements), B (5), C (7): 19, padded to 20 for dp = 2;
// bucket_numel = 6.
//   A ends at 7, 7 >= 6 elements: the bucket closes at round_up(7, 2) = 8  -> [0, 8)
//   B ends at 12 (4 elements since 8), C at 19 (11 >= 6): closes at 20     -> [8, 20)
//   rank 0: flat [0, 4) at shard [0, 4), flat [8, 14) at shard [4, 10)
//   rank 1: flat [4, 8) at shard [0, 4), flat [14, 20) at shard [4, 10)
// Bucket 0 holds element 7, B's first, so it waits for B as well as A. The backward
// pass writes later parameters first (the layers run in reverse), so B is final before
// A and rounding up costs no waiting.
//
// Readiness, per optimizer step: the backward pass reports ranges of the flat buffer
// whose gradients are final (RatLM::GradientsFinal); a bucket starts once every table
// element in it has been reported, unless it is held back (gradients that are summed in
// another group before the data-parallel sum: AdamW's tied embedding copies).
// reduce_scatter() starts the rest, in bucket order, and waits for all.
//
// Invariants: every rank of the dp group reports the same ranges in the same order (they
// run one program on one table), so the buckets start in the same order everywhere, as
// MPI requires of non-blocking collectives; an element is reported at most once per
// step; once a bucket has started nothing writes its gradients until reduce_scatter()
// returns (the model's hook is called only after the gradients' last write).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "model/param_store.hpp"
#include "parallel/group.hpp"

namespace ratrain {

// Flat elements [begin, end) of the parameter buffers; end - begin a multiple of dp.
struct GradBucket {
  std::int64_t begin = 0, end = 0;
  std::int64_t numel() const { return end - begin; }
  bool operator==(const GradBucket&) const = default;
};

// One piece of a rank's shard: flat elements [flat_begin, flat_begin + numel) are shard
// elements [shard_offset, shard_offset + numel).
struct ShardRange {
  std::int64_t flat_begin = 0, shard_offset = 0, numel = 0;
  bool operator==(const ShardRange&) const = default;
};

// The buckets of `table`, whose flat buffers hold `padded_numel` elements (a multiple of
// dp), for buckets of about `bucket_numel` elements (>= 1).
std::vector<GradBucket> cut_grad_buckets(const ParamTable& table, std::int64_t padded_numel,
                                         int dp, std::int64_t bucket_numel);

// Data-parallel rank `rank`'s block of every bucket, in shard order, with neighbours that
// continue each other merged: with dp = 1 one range, the whole buffer.
std::vector<ShardRange> shard_ranges(const std::vector<GradBucket>& buckets, int dp, int rank);

class GradBuckets {
 public:
  using FlatRange = std::pair<std::int64_t, std::int64_t>;  // [begin, end)

  // grads: the (padded,) flat gradient buffer of `table`. Buckets of about
  // `bucket_bytes`; those meeting a range of `held_back` start only in reduce_scatter().
  GradBuckets(const ParamTable& table, const Tensor& grads, Group dp, std::int64_t bucket_bytes,
              const std::vector<FlatRange>& held_back);

  // Gradient elements [begin, end) of the table will not be written again before
  // reduce_scatter(): starts the reduce-scatter of every bucket this completes, in
  // bucket order, unless held back, and lets MPI advance the ones in flight.
  void gradients_final(std::int64_t begin, std::int64_t end);

  // Starts the buckets not started yet, in bucket order, and waits for every one.
  // Returns this rank's (S,) shard of the gradients summed over dp: for dp = 1 the
  // gradient buffer itself, no copy. The next step's reports may follow.
  Tensor& reduce_scatter();

  // flat: (padded,), this rank's shard ranges hold its updated values; once request b of
  // the result is complete, every rank's ranges of bucket b do. In place, one all-gather
  // per bucket, all started at once, in bucket order.
  std::vector<CollectiveRequest> start_all_gather(Tensor& flat) const;

  const std::vector<GradBucket>& buckets() const { return buckets_; }
  const std::vector<ShardRange>& shard() const { return shard_; }

 private:
  // Bucket b's elements that belong to the table (not the padding at the end).
  std::int64_t table_elements(std::size_t b) const;
  void start(std::size_t b);

  Group dp_;
  std::int64_t table_numel_;
  Tensor grads_;  // (padded,)
  std::vector<GradBucket> buckets_;
  std::vector<ShardRange> shard_;
  Tensor shard_grads_;  // (S,); the gradient buffer itself for dp = 1
  std::vector<bool> held_back_;
  // This step's state, per bucket: table elements not reported final yet, and the
  // reduce-scatter (complete until started; started_ tells the two apart).
  std::vector<std::int64_t> unreported_;
  std::vector<bool> started_;
  std::vector<CollectiveRequest> requests_;
};

}  // namespace ratrain
