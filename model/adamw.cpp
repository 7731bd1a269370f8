#include "model/adamw.hpp"

#include <algorithm>
#include <cmath>

namespace ratrain {
namespace {

bool holds_tied_copy(const ParamTable& table) {
  for (const ParamEntry& e : table.entries())
    if (e.copies == StageCopies::first_and_last) return true;
  return false;
}

}  // namespace

AdamW::AdamW(ParamStore& store, AdamWConfig config, const ParallelContext& ctx)
    : store_(store),
      config_(config),
      ctx_(ctx),
      shard_numel_(store.padded_numel() / ctx.dp.size()),
      tied_stages_(ctx.pp.split(holds_tied_copy(store.table()) ? 0 : 1, ctx.pp.rank())) {
  RT_REQUIRE(store.padded_numel() % ctx.dp.size() == 0,
             "the parameter buffers are not padded for ", ctx.dp.size(), " data-parallel shards");
  shard_begin_ = ctx.dp.rank() * shard_numel_;
  const std::int64_t shard_end = shard_begin_ + shard_numel_;
  for (const ParamEntry& e : store.table().entries()) {
    if (e.shard.is_whole() && ctx.tp.rank() != 0) continue;
    if (e.copies == StageCopies::first_and_last && ctx.pp.rank() != 0) continue;
    const std::int64_t begin = std::max(e.offset, shard_begin_);
    const std::int64_t end = std::min(e.offset + e.numel, shard_end);
    if (begin < end) counted_.emplace_back(begin - shard_begin_, end - shard_begin_);
  }
  const Tensor& grads = store.grads();
  m_ = Tensor::zeros({shard_numel_}, grads.dtype(), grads.device());
  v_ = Tensor::zeros({shard_numel_}, grads.dtype(), grads.device());
}

double AdamW::counted_sum_of_squares(const Tensor& shard_grads) const {
  double sum = 0;
  for (const auto& [begin, end] : counted_)
    sum += ops::sum_of_squares(shard_grads.flat_view(begin, {end - begin}));
  return sum;
}

double AdamW::step(double lr) {
  Tensor& grads = store_.grads();
  ctx_.sp.all_reduce_sum(grads);  // each sequence chunk contributed part of every gradient
  for (const ParamEntry& e : store_.table().entries()) {
    if (e.copies != StageCopies::first_and_last) continue;
    // The embedding's gradient on the first stage, the head's on the last.
    Tensor tied = store_.grad(e.name);
    tied_stages_.all_reduce_sum(tied);
  }
  Tensor shard_grads = ctx_.dp.reduce_scatter_sum(grads);  // (S,)
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
  Tensor& values = store_.optimizer_values();
  Tensor shard_values = values.flat_view(shard_begin_, {shard_numel_});
  ops::adamw_update(shard_values, shard_grads, m_, v_, hyper);
  if (ctx_.dp.size() > 1) values.copy_from(ctx_.dp.all_gather(shard_values));
  store_.publish_master();
  return norm;
}

}  // namespace ratrain
