#include "model/adamw.hpp"

#include <algorithm>
#include <cmath>
#include <exception>

namespace ratrain {
namespace {

// The flat ranges of the tied copies (none on the stages between the first and the
// last): summed over the two stages before their buckets' data-parallel reduce-scatter.
std::vector<GradBuckets::FlatRange> tied_ranges(const ParamTable& table) {
  std::vector<GradBuckets::FlatRange> ranges;
  for (const ParamEntry& e : table.entries())
    if (e.copies == StageCopies::first_and_last) ranges.emplace_back(e.offset, e.offset + e.numel);
  return ranges;
}

}  // namespace

AdamW::AdamW(ParamStore& store, AdamWConfig config, const ParallelContext& ctx)
    : store_(store),
      config_(config),
      ctx_(ctx),
      tied_stages_(ctx.pp.split(tied_ranges(store.table()).empty() ? 1 : 0, ctx.pp.rank())),
      buckets_(store.table(), store.grads(), ctx.dp, config.bucket_bytes,
               tied_ranges(store.table())) {
  for (const ParamEntry& e : store.table().entries()) {
    if (e.shard.is_whole() && ctx.tp.rank() != 0) continue;
    if (e.copies == StageCopies::first_and_last && ctx.pp.rank() != 0) continue;
    for (const ShardRange& r : buckets_.shard()) {
      const std::int64_t begin = std::max(e.offset, r.flat_begin);
      const std::int64_t end = std::min(e.offset + e.numel, r.flat_begin + r.numel);
      if (begin < end)
        counted_.emplace_back(r.shard_offset + begin - r.flat_begin,
                              r.shard_offset + end - r.flat_begin);
    }
  }
  const Tensor& grads = store.grads();
  const std::int64_t shard_numel = store.padded_numel() / ctx.dp.size();
  m_ = Tensor::zeros({shard_numel}, grads.dtype(), grads.device());
  v_ = Tensor::zeros({shard_numel}, grads.dtype(), grads.device());
  store_.set_pending(this);
}

AdamW::~AdamW() {
  // An exception unwinding past the optimizer leaves the requests to their own
  // destructors (CollectiveRequest: parked, not waited); normally every one completes.
  if (std::uncaught_exceptions() == 0) complete(0, store_.padded_numel());
  store_.set_pending(nullptr);
}

void AdamW::complete(std::int64_t begin, std::int64_t end) {
  if (gathers_.empty()) return;
  const std::vector<GradBucket>& buckets = buckets_.buckets();
  bool all_done = true;
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    CollectiveRequest& gather = gathers_[b];
    if (!gather.complete() && buckets[b].begin < end && begin < buckets[b].end) {
      gather.wait();
      store_.publish_master(buckets[b].begin, buckets[b].numel());
    }
    all_done = all_done && gather.complete();
  }
  if (all_done) gathers_.clear();
}

std::int64_t AdamW::buckets_in_flight() const {
  return std::count_if(gathers_.begin(), gathers_.end(),
                       [](const CollectiveRequest& gather) { return !gather.complete(); });
}

std::int64_t AdamW::shard_begin() const {
  const std::vector<ShardRange>& shard = buckets_.shard();
  RT_REQUIRE(shard.size() == 1, "this rank's optimizer shard is ", shard.size(),
             " ranges of the flat buffer (one per gradient bucket), not one: use "
             "AdamW::shard_ranges()");
  return shard.front().flat_begin;
}

double AdamW::counted_sum_of_squares(const Tensor& shard_grads) const {
  double sum = 0;
  for (const auto& [begin, end] : counted_)
    sum += ops::sum_of_squares(shard_grads.flat_view(begin, {end - begin}));
  return sum;
}

double AdamW::step(double lr) {
  complete(0, store_.padded_numel());  // the last step's values, where no reader took them
  for (const ParamEntry& e : store_.table().entries()) {
    if (e.copies != StageCopies::first_and_last) continue;
    // The embedding's gradient on the first stage, the head's on the last.
    Tensor tied = store_.grad(e.name);
    tied_stages_.all_reduce_sum(tied);
  }
  Tensor& shard_grads = buckets_.reduce_scatter();  // (S,), summed over dp
  ctx_.sp.all_reduce_sum(shard_grads);  // after dp: why, in the header
  const double norm = std::sqrt(ctx_.pp.all_reduce_sum(
      ctx_.tp.all_reduce_sum(ctx_.dp.all_reduce_sum(counted_sum_of_squares(shard_grads)))));
  if (config_.clip_norm > 0) {
    // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6), never up.
    const double coef = config_.clip_norm / (norm + 1e-6);
    if (coef < 1.0) ops::scale_inplace(shard_grads, coef);
  }
  ++steps_;
  const ops::AdamWHyper hyper{.lr = lr,
                              .beta1 = config_.beta1,
                              .beta2 = config_.beta2,
                              .eps = config_.eps,
                              .weight_decay = config_.weight_decay,
                              .step = steps_};
  if (state_reader_) {  // see order_next_update_after
    state_reader_->order_compute_after();
    state_reader_.reset();
  }
  Tensor& values = store_.optimizer_values();
  for (const ShardRange& r : buckets_.shard()) {
    Tensor shard_values = values.flat_view(r.flat_begin, {r.numel});
    Tensor m = m_.flat_view(r.shard_offset, {r.numel}), v = v_.flat_view(r.shard_offset, {r.numel});
    ops::adamw_update(shard_values, shard_grads.flat_view(r.shard_offset, {r.numel}), m, v, hyper);
  }
  if (ctx_.dp.size() == 1) {
    store_.publish_master();  // nothing to gather: every value is this rank's
  } else {
    gathers_ = buckets_.start_all_gather(values);
  }
  return norm;
}

}  // namespace ratrain
