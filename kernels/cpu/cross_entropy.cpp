// Tied output head fused with cross-entropy: logits = x emb^T, one block of kBlockRows
// rows at a time, so the scratch is (kBlockRows, V) and never (N, V).
// x, dx (N, C); emb, demb (V, C); labels (N) i32, -100 = ignored.
//
// Per row with a valid label y: loss = lse(z) - z_y, computed in double after
// subtracting the row max. The gradient w.r.t. the logits,
//   G = grad_scale * (softmax(z) - onehot(y))   (a zero row for ignored labels),
// overwrites the logits block in place and feeds two GEMMs:
//   dx_block = G emb (overwritten),  demb += G^T x_block (accumulated).
// Row losses are summed in row order, so loss_sum does not depend on the thread count.
//
// The vocab-shard form (ops.hpp, used by parallel/vocab_parallel.cpp) runs the same
// blockwise code on emb_shard = rows [vocab_begin, vocab_begin + Vs) of the vocabulary,
// split in two phases because lse needs every shard: phase 1 keeps each row's softmax
// statistics (max, sum of exp) and target logit, merge_cross_entropy_shard_stats folds
// the shards' statistics into lse and the loss, and phase 2 recomputes the logits block
// by block (rather than keep (N, Vs) of them) to form G with that lse. The shards' sums
// are merged in double as sum = sum_s sum_s * exp(max_s - max) with max = max_s max_s, so
// the sharded loss and G equal the full op's up to double rounding.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "kernels/cpu/cpu.hpp"
#include "kernels/cpu/gemm.hpp"

namespace ratrain::cpu {
namespace {

constexpr std::int64_t kBlockRows = 64;

// Requires every label to be -100 or in [0, vocab). A vocabulary shard does not know V
// (vocab == nullopt): it requires labels >= 0, a label past it belongs to another shard.
void check_labels(const Tensor& labels, std::optional<std::int64_t> vocab) {
  const std::int32_t* ls = labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < labels.numel(); ++i)
    RT_REQUIRE(ls[i] == ops::kIgnoreLabel || (ls[i] >= 0 && (!vocab || ls[i] < *vocab)),
               "label ", ls[i], " at position ", i, " is outside the vocabulary [0, ",
               vocab ? std::to_string(*vocab) : "V", ") and is not the ignore label ",
               ops::kIgnoreLabel);
}

// The softmax normaliser of a set of logits: their max and sum_j exp(z_j - max), in
// double. The empty set is {-inf, 0}.
struct SoftmaxStat {
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0;
  double lse() const { return max + std::log(sum); }
};

template <typename T>
SoftmaxStat softmax_stat(const T* z, std::int64_t count) {
  SoftmaxStat s{.max = *std::max_element(z, z + count)};
  for (std::int64_t j = 0; j < count; ++j) s.sum += std::exp(double(z[j]) - s.max);
  return s;
}

// The statistics of the union of two disjoint sets of logits.
SoftmaxStat merge(const SoftmaxStat& a, const SoftmaxStat& b) {
  const double m = std::max(a.max, b.max);
  if (m == -std::numeric_limits<double>::infinity()) return {};  // both empty
  return {.max = m, .sum = a.sum * std::exp(a.max - m) + b.sum * std::exp(b.max - m)};
}

// z (count) <- G = grad_scale * (exp(z - lse) - onehot(target)), where lse is the
// log-sum-exp of the whole row (z may be a shard of it). target < 0: the one-hot lies
// outside z.
template <typename T>
void softmax_gradient_row(T* z, std::int64_t count, double lse, std::int64_t target,
                          double grad_scale) {
  for (std::int64_t j = 0; j < count; ++j) z[j] = T(grad_scale * std::exp(double(z[j]) - lse));
  if (target >= 0) z[target] -= T(grad_scale);
}

// The blockwise head shared by every form: for each block of rows, block (rows, V) =
// x_block emb^T, then row_fn(n, z) on each row (in parallel; n is the global row, z its
// V logits), which must not throw and, when dx or demb is given, must leave G in z; then
// dx_block = G emb (overwritten) and demb += G^T x_block.
template <typename T, typename RowFn>
void for_each_logits_block(const Tensor& x, const Tensor& emb, Tensor* dx, Tensor* demb,
                           RowFn&& row_fn) {
  const std::int64_t n = x.dim(0), c = x.dim(1), vocab = emb.dim(0);
  const T* xs = x.data<T>();
  const T* es = emb.data<T>();
  std::vector<T> block(static_cast<std::size_t>(kBlockRows * vocab));  // (kBlockRows, V)
  for (std::int64_t r0 = 0; r0 < n; r0 += kBlockRows) {
    const std::int64_t rows = std::min(kBlockRows, n - r0);
    const T* x_block = xs + r0 * c;
    // block (rows, V) = x_block (rows, C) emb^T (C, V)
    gemm<T>({.trans_b = Trans::yes, .m = rows, .n = vocab, .k = c, .a = x_block, .lda = c,
             .b = es, .ldb = c, .c = block.data(), .ldc = vocab});
#pragma omp parallel for
    for (std::int64_t r = 0; r < rows; ++r) row_fn(r0 + r, block.data() + r * vocab);
    if (dx) {
      // dx_block (rows, C) = G (rows, V) emb (V, C)
      gemm<T>({.m = rows, .n = c, .k = vocab, .a = block.data(), .lda = vocab, .b = es,
               .ldb = c, .c = dx->data<T>() + r0 * c, .ldc = c});
    }
    if (demb) {
      // demb (V, C) += G^T (V, rows) x_block (rows, C)
      gemm<T>({.trans_a = Trans::yes, .m = vocab, .n = c, .k = rows, .a = block.data(),
               .lda = vocab, .b = x_block, .ldb = c, .beta = 1, .c = demb->data<T>(), .ldc = c});
    }
  }
}

// The rows of one shard's statistics (kShardStatRows, N), laid out as ops.hpp says.
// P is double* or const double*.
template <typename P>
struct StatRows {
  P max;           // (N) max logit
  P sum_exp;       // (N) sum of exp(z - max)
  P target_logit;  // (N) z at the label where the shard holds it, else 0
};
template <typename P>
StatRows<P> stat_rows(P stats, std::int64_t n) {
  static_assert(ops::kShardStatRows == 3, "StatRows names every row of the layout");
  return {.max = stats, .sum_exp = stats + n, .target_logit = stats + 2 * n};
}

}  // namespace

std::int64_t count_valid_labels(const Tensor& labels) {
  const std::int32_t* ls = labels.data<std::int32_t>();
  return std::count_if(ls, ls + labels.numel(),
                       [](std::int32_t l) { return l != ops::kIgnoreLabel; });
}

template <typename T>
ops::CrossEntropyResult tied_head_cross_entropy(const Tensor& x, const Tensor& emb,
                                                const Tensor& labels, double grad_scale,
                                                Tensor* dx, Tensor* demb) {
  const std::int64_t vocab = emb.dim(0);
  check_labels(labels, vocab);
  const std::int32_t* ls = labels.data<std::int32_t>();
  const bool want_grad = dx != nullptr || demb != nullptr;
  std::vector<double> row_loss(static_cast<std::size_t>(x.dim(0)), 0.0);  // (N)
  for_each_logits_block<T>(x, emb, dx, demb, [&](std::int64_t i, T* z) {
    const std::int32_t label = ls[i];
    if (label == ops::kIgnoreLabel) {
      if (want_grad) std::fill_n(z, vocab, T(0));
      return;
    }
    const double lse = softmax_stat(z, vocab).lse();
    row_loss[i] = lse - double(z[label]);
    if (want_grad) softmax_gradient_row(z, vocab, lse, label, grad_scale);
  });
  ops::CrossEntropyResult result;
  for (const double loss : row_loss) result.loss_sum += loss;  // in row order
  result.valid = count_valid_labels(labels);
  return result;
}

template <typename T>
void cross_entropy_shard_stats(const Tensor& x, const Tensor& emb_shard,
                               std::int64_t vocab_begin, const Tensor& labels, Tensor& stats) {
  check_labels(labels, std::nullopt);
  const std::int64_t n = x.dim(0), rows = emb_shard.dim(0);
  const std::int32_t* ls = labels.data<std::int32_t>();
  const StatRows<double*> out = stat_rows(stats.data<double>(), n);
  // Ignored rows get statistics too: the merged lse is then finite on every row.
  for_each_logits_block<T>(x, emb_shard, nullptr, nullptr, [&](std::int64_t i, T* z) {
    const SoftmaxStat s = softmax_stat(z, rows);
    out.max[i] = s.max;
    out.sum_exp[i] = s.sum;
    const std::int64_t target = vocab_shard_row(ls[i], vocab_begin, rows);
    out.target_logit[i] = target >= 0 ? double(z[target]) : 0.0;  // exact zeros elsewhere
  });
}

ops::CrossEntropyResult merge_cross_entropy_shard_stats(const Tensor& all_stats,
                                                        const Tensor& labels, Tensor& lse) {
  const std::int64_t n = labels.numel();
  const std::int64_t shards = all_stats.dim(0) / ops::kShardStatRows;
  const double* stats = all_stats.data<double>();  // (S, kShardStatRows, N)
  const std::int32_t* ls = labels.data<std::int32_t>();
  double* out = lse.data<double>();
  ops::CrossEntropyResult result;
  for (std::int64_t i = 0; i < n; ++i) {
    SoftmaxStat row;
    double target = 0;  // one shard holds the label, the others add exact zeros
    for (std::int64_t s = 0; s < shards; ++s) {
      const StatRows<const double*> shard = stat_rows(stats + s * ops::kShardStatRows * n, n);
      row = merge(row, {.max = shard.max[i], .sum = shard.sum_exp[i]});
      target += shard.target_logit[i];
    }
    out[i] = row.lse();
    if (ls[i] == ops::kIgnoreLabel) continue;
    result.loss_sum += out[i] - target;  // in row order, as tied_head_cross_entropy
    ++result.valid;
  }
  return result;
}

template <typename T>
void cross_entropy_shard_backward(const Tensor& x, const Tensor& emb_shard,
                                  std::int64_t vocab_begin, const Tensor& labels,
                                  const Tensor& lse, double grad_scale, Tensor* dx,
                                  Tensor* demb_shard) {
  if (!dx && !demb_shard) return;
  check_labels(labels, std::nullopt);
  const std::int64_t rows = emb_shard.dim(0);
  const std::int32_t* ls = labels.data<std::int32_t>();
  const double* row_lse = lse.data<double>();
  for_each_logits_block<T>(x, emb_shard, dx, demb_shard, [&](std::int64_t i, T* z) {
    if (ls[i] == ops::kIgnoreLabel) {
      std::fill_n(z, rows, T(0));
      return;
    }
    softmax_gradient_row(z, rows, row_lse[i], vocab_shard_row(ls[i], vocab_begin, rows),
                         grad_scale);
  });
}

#define RATRAIN_INSTANTIATE_CROSS_ENTROPY(T)                                                   \
  template ops::CrossEntropyResult tied_head_cross_entropy<T>(                                 \
      const Tensor&, const Tensor&, const Tensor&, double, Tensor*, Tensor*);                  \
  template void cross_entropy_shard_stats<T>(const Tensor&, const Tensor&, std::int64_t,       \
                                             const Tensor&, Tensor&);                          \
  template void cross_entropy_shard_backward<T>(const Tensor&, const Tensor&, std::int64_t,    \
                                                const Tensor&, const Tensor&, double, Tensor*, \
                                                Tensor*);
RATRAIN_INSTANTIATE_CROSS_ENTROPY(float)
RATRAIN_INSTANTIATE_CROSS_ENTROPY(double)
#undef RATRAIN_INSTANTIATE_CROSS_ENTROPY

}  // namespace ratrain::cpu
