#include "model/grad_buckets.hpp"

#include <algorithm>

namespace ratrain {
namespace {

std::int64_t round_up(std::int64_t n, std::int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

std::int64_t elements_per_bucket(std::int64_t bucket_bytes, DType dtype) {
  RT_REQUIRE(bucket_bytes > 0, "the gradient bucket size must be positive (got ", bucket_bytes,
             " bytes; optim.bucket_mb)");
  return std::max<std::int64_t>(1, bucket_bytes / static_cast<std::int64_t>(dtype_size(dtype)));
}

// `next` takes up where `previous` stops, in the flat buffer and in the shard alike.
bool continues(const ShardRange& previous, const ShardRange& next) {
  return previous.flat_begin + previous.numel == next.flat_begin &&
         previous.shard_offset + previous.numel == next.shard_offset;
}

}  // namespace

std::vector<GradBucket> cut_grad_buckets(const ParamTable& table, std::int64_t padded_numel,
                                         int dp, std::int64_t bucket_numel) {
  RT_ASSERT(dp >= 1 && bucket_numel >= 1 && padded_numel >= table.total_numel());
  RT_REQUIRE(padded_numel % dp == 0, "the parameter buffers (", padded_numel,
             " elements) are not padded for ", dp, " data-parallel shards");
  std::vector<GradBucket> buckets;
  std::int64_t begin = 0;
  for (const ParamEntry& e : table.entries()) {
    // Negative when an earlier cut's rounding already passed this parameter's end.
    const std::int64_t filled = e.offset + e.numel - begin;
    if (filled < bucket_numel) continue;
    const std::int64_t cut = round_up(e.offset + e.numel, dp);
    buckets.push_back({begin, cut});
    begin = cut;
  }
  if (begin < padded_numel) buckets.push_back({begin, padded_numel});
  return buckets;
}

std::vector<ShardRange> shard_ranges(const std::vector<GradBucket>& buckets, int dp, int rank) {
  std::vector<ShardRange> ranges;
  for (const GradBucket& b : buckets) {
    const std::int64_t block = b.numel() / dp;
    const ShardRange r{.flat_begin = b.begin + rank * block, .shard_offset = b.begin / dp,
                       .numel = block};
    if (!ranges.empty() && continues(ranges.back(), r))
      ranges.back().numel += r.numel;
    else
      ranges.push_back(r);
  }
  return ranges;
}

GradBuckets::GradBuckets(const ParamTable& table, const Tensor& grads, Group dp,
                         std::int64_t bucket_bytes, const std::vector<FlatRange>& held_back)
    : dp_(std::move(dp)),
      table_numel_(table.total_numel()),
      grads_(grads),
      buckets_(cut_grad_buckets(table, grads.numel(), dp_.size(),
                                elements_per_bucket(bucket_bytes, grads.dtype()))),
      shard_(shard_ranges(buckets_, dp_.size(), dp_.rank())),
      // One rank's reduce-scatter leaves every gradient where it is.
      shard_grads_(dp_.size() == 1 ? grads
                                   : Tensor::empty({grads.numel() / dp_.size()}, grads.dtype(),
                                                   grads.device())),
      held_back_(buckets_.size(), false),
      unreported_(buckets_.size()),
      started_(buckets_.size(), false),
      requests_(buckets_.size()) {
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    unreported_[b] = table_elements(b);
    for (const auto& [begin, end] : held_back)
      if (begin < buckets_[b].end && buckets_[b].begin < end) held_back_[b] = true;
  }
}

std::int64_t GradBuckets::table_elements(std::size_t b) const {
  return std::min(buckets_[b].end, table_numel_) - buckets_[b].begin;
}

void GradBuckets::start(std::size_t b) {
  const GradBucket& bucket = buckets_[b];
  Tensor shard = shard_grads_.flat_view(bucket.begin / dp_.size(), {bucket.numel() / dp_.size()});
  requests_[b] =
      dp_.reduce_scatter_sum_async(grads_.flat_view(bucket.begin, {bucket.numel()}), shard);
  started_[b] = true;
}

void GradBuckets::gradients_final(std::int64_t begin, std::int64_t end) {
  RT_ASSERT(0 <= begin && begin <= end && end <= table_numel_);
  // The first bucket that ends after `begin`, then every one that starts before `end`.
  auto it = std::upper_bound(buckets_.begin(), buckets_.end(), begin,
                             [](std::int64_t at, const GradBucket& b) { return at < b.end; });
  for (; it != buckets_.end() && it->begin < end; ++it) {
    const auto b = static_cast<std::size_t>(it - buckets_.begin());
    const std::int64_t reported = std::min(end, it->end) - std::max(begin, it->begin);
    RT_ASSERT(reported <= unreported_[b]);  // no element is reported twice in a step
    unreported_[b] -= reported;
    if (unreported_[b] == 0 && !started_[b] && !held_back_[b]) start(b);
  }
  for (CollectiveRequest& request : requests_) request.test();
}

Tensor& GradBuckets::reduce_scatter() {
  for (std::size_t b = 0; b < buckets_.size(); ++b)
    if (!started_[b]) start(b);
  for (CollectiveRequest& request : requests_) request.wait();
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    unreported_[b] = table_elements(b);
    started_[b] = false;
  }
  return shard_grads_;
}

std::vector<CollectiveRequest> GradBuckets::start_all_gather(Tensor& flat) const {
  std::vector<CollectiveRequest> gathers;
  gathers.reserve(buckets_.size());
  for (const GradBucket& b : buckets_) {
    Tensor bucket = flat.flat_view(b.begin, {b.numel()});
    gathers.push_back(dp_.all_gather_in_place_async(bucket));
  }
  return gathers;
}

}  // namespace ratrain
