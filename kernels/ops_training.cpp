// Host-side checks and dispatch for the training ops of ops.hpp: the tied head with
// cross-entropy (full vocabulary or the phases of a vocab shard), label counting and the
// optimizer kernels (AdamW, sum of squares, scaling).
#include <string>

#include "kernels/cpu/cpu.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/ops.hpp"

namespace ratrain::ops {

using detail::dispatch_float;
using detail::Named;
using detail::require_rank;
using detail::require_shapes;

namespace {
// The checks shared by the full and the vocab-shard head: x (N, C), emb (V or Vs, C),
// labels (N) i32, and the gradients that are given.
void check_tied_head(const Tensor& x, const Tensor& emb, const Tensor& labels, const Tensor* dx,
                     const Tensor* demb, const char* op) {
  require_rank(x, 2, (std::string(op) + ": x").c_str());
  require_rank(emb, 2, (std::string(op) + ": emb").c_str());
  require_shapes({emb.dim(0), x.dim(1)}, {{&emb, "emb (V, C)"}}, op);
  detail::require_index_tensor(labels, x.dim(0), x, (std::string(op) + ": labels").c_str());
  require_same_type(x, {&emb}, op);
  if (dx) {
    require_shapes(x.shape(), {{dx, "dx"}}, op);
    require_same_type(x, {dx}, op);
  }
  if (demb) {
    require_shapes(emb.shape(), {{demb, "demb"}}, op);
    detail::require_f32_on_gpu(x, *demb, "demb", op);
  }
}

// What the vocab-shard phases check beyond check_tied_head.
void check_shard(const Tensor& emb_shard, std::int64_t vocab_begin, const char* op) {
  RT_REQUIRE(emb_shard.dim(0) >= 1, op, ": the vocabulary shard emb_shard has no rows");
  RT_REQUIRE(vocab_begin >= 0, op, ": vocab_begin must be >= 0, got ", vocab_begin);
}

// The shard statistics and lse are f64 on both backends (the fold runs in double), on the
// device of the other operands (`like`).
void require_f64_beside(const Tensor& t, const Tensor& like, const char* name, const char* op) {
  RT_REQUIRE(t.dtype() == DType::f64 && t.device() == like.device(), op, ": ", name,
             " must be f64 on the ", device_name(like.device()), ", got ", dtype_name(t.dtype()),
             " on ", device_name(t.device()));
}
}  // namespace

CrossEntropyResult tied_head_cross_entropy(const Tensor& x, const Tensor& emb,
                                           const Tensor& labels, double grad_scale, Tensor* dx,
                                           Tensor* demb) {
  constexpr const char* op = "tied_head_cross_entropy";
  check_tied_head(x, emb, labels, dx, demb, op);
  RT_DISPATCH_CUDA(x, tied_head_cross_entropy, x, emb, labels, grad_scale, dx, demb);
  return dispatch_float(x, op, [&](auto t) {
    return cpu::tied_head_cross_entropy<decltype(t)>(x, emb, labels, grad_scale, dx, demb);
  });
}

void cross_entropy_shard_stats(const Tensor& x, const Tensor& emb_shard,
                               std::int64_t vocab_begin, const Tensor& labels, Tensor& stats) {
  constexpr const char* op = "cross_entropy_shard_stats";
  check_tied_head(x, emb_shard, labels, nullptr, nullptr, op);
  check_shard(emb_shard, vocab_begin, op);
  require_shape(stats, {kShardStatRows, x.dim(0)}, "cross_entropy_shard_stats: stats");
  require_f64_beside(stats, x, "stats", op);
  RT_DISPATCH_CUDA(x, cross_entropy_shard_stats, x, emb_shard, vocab_begin, labels, stats);
  dispatch_float(x, op, [&](auto t) {
    cpu::cross_entropy_shard_stats<decltype(t)>(x, emb_shard, vocab_begin, labels, stats);
  });
}

CrossEntropyResult merge_cross_entropy_shard_stats(const Tensor& all_stats,
                                                   const Tensor& labels, Tensor& lse) {
  constexpr const char* op = "merge_cross_entropy_shard_stats";
  require_rank(all_stats, 2, "merge_cross_entropy_shard_stats: all_stats");
  RT_REQUIRE(all_stats.dim(0) >= kShardStatRows && all_stats.dim(0) % kShardStatRows == 0, op,
             ": all_stats must stack ", kShardStatRows, " rows per shard, got shape ",
             shape_str(all_stats.shape()));
  const std::int64_t n = all_stats.dim(1);
  detail::require_index_tensor(labels, n, all_stats, "merge_cross_entropy_shard_stats: labels");
  require_shape(lse, {n}, "merge_cross_entropy_shard_stats: lse");
  require_f64_beside(all_stats, labels, "all_stats", op);
  require_f64_beside(lse, labels, "lse", op);
  RT_DISPATCH_CUDA(all_stats, merge_cross_entropy_shard_stats, all_stats, labels, lse);
  RT_REQUIRE(all_stats.device() == Device::cpu, op,
             ": got a cuda tensor but ratrain was built without the CUDA backend");
  return cpu::merge_cross_entropy_shard_stats(all_stats, labels, lse);
}

void cross_entropy_shard_backward(const Tensor& x, const Tensor& emb_shard,
                                  std::int64_t vocab_begin, const Tensor& labels,
                                  const Tensor& lse, double grad_scale, Tensor* dx,
                                  Tensor* demb_shard) {
  constexpr const char* op = "cross_entropy_shard_backward";
  check_tied_head(x, emb_shard, labels, dx, demb_shard, op);
  check_shard(emb_shard, vocab_begin, op);
  require_shape(lse, {x.dim(0)}, "cross_entropy_shard_backward: lse");
  require_f64_beside(lse, x, "lse", op);
  RT_DISPATCH_CUDA(x, cross_entropy_shard_backward, x, emb_shard, vocab_begin, labels, lse,
                   grad_scale, dx, demb_shard);
  dispatch_float(x, op, [&](auto t) {
    cpu::cross_entropy_shard_backward<decltype(t)>(x, emb_shard, vocab_begin, labels, lse,
                                                   grad_scale, dx, demb_shard);
  });
}

std::int64_t count_valid_labels(const Tensor& labels) {
  RT_REQUIRE(labels.dtype() == DType::i32, "count_valid_labels: labels must be i32, got ",
             dtype_name(labels.dtype()));
  RT_DISPATCH_CUDA(labels, count_valid_labels, labels);
  RT_REQUIRE(labels.device() == Device::cpu,
             "count_valid_labels: got a cuda tensor but ratrain was built without the CUDA "
             "backend");
  return cpu::count_valid_labels(labels);
}

void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& h) {
  const Named operands[] = {{&grad, "grad"}, {&m, "m"}, {&v, "v"}};
  for (const Named& n : operands)
    RT_REQUIRE(n.tensor->numel() == param.numel(), "adamw_update: param has ", param.numel(),
               " elements but ", n.name, " has ", n.tensor->numel());
  require_same_type(param, {&grad, &m, &v}, "adamw_update");
  RT_REQUIRE(h.step >= 1, "adamw_update: step is 1-based, got ", h.step);
  RT_DISPATCH_CUDA(param, adamw_update, param, grad, m, v, h);
  dispatch_float(param, "adamw_update",
                 [&](auto t) { cpu::adamw_update<decltype(t)>(param, grad, m, v, h); });
}

double sum_of_squares(const Tensor& x) {
  RT_DISPATCH_CUDA(x, sum_of_squares, x);
  return dispatch_float(x, "sum_of_squares",
                        [&](auto t) { return cpu::sum_of_squares<decltype(t)>(x); });
}

void scale_inplace(Tensor& x, double factor) {
  RT_DISPATCH_CUDA(x, scale_inplace, x, factor);
  dispatch_float(x, "scale_inplace",
                 [&](auto t) { cpu::scale_inplace<decltype(t)>(x, factor); });
}

}  // namespace ratrain::ops
