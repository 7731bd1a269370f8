// The vocab-shard ops of ops.hpp on one process: a random (V, C) embedding split into
// shards, each shard's op run on its rows, and the shards' results combined by hand in
// this file (the max / sum-of-exp fold and the sum of dx terms that the tp collectives do
// in parallel/vocab_parallel.cpp) must reproduce the full-table ops.
//
// Sizes: V = 53, C = 11, N = 150 (more than two of the CPU kernel's 64-row blocks, the
// last one partial). Two splits: near-even (18, 18, 17 rows) and lopsided (1, 49, 3
// rows). Tolerance 1e-12 in f64: the folded log-sum-exp differs from the one-pass one by
// double rounding only. The embedding is compared bitwise: its shards copy and add the
// same values in the same order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

constexpr std::int64_t kVocab = 53, kChannels = 11, kRows = 150;

struct Shard {
  std::int64_t begin, end;
};
const std::vector<std::vector<Shard>> kSplits = {{{0, 18}, {18, 36}, {36, 53}},
                                                 {{0, 1}, {1, 50}, {50, 53}}};

std::string name(const std::vector<Shard>& split) {
  std::ostringstream s;
  for (const Shard& shard : split) s << "[" << shard.begin << ", " << shard.end << ")";
  return s.str();
}

Tensor rows_of(const Tensor& full, const Shard& shard) {
  return test::clone(full.rows(shard.begin, shard.end));
}

// labels (N): every ninth ignored, the others striding over the whole vocabulary (so
// over every shard, the one-row shard included).
Tensor labels() {
  std::vector<std::int32_t> ls(kRows);
  for (std::int64_t i = 0; i < kRows; ++i)
    ls[i] = i % 9 == 4 ? ops::kIgnoreLabel : std::int32_t((i * 29 + 5) % kVocab);
  return test::int_tensor(ls);
}

// The fold of the shards' phase-1 statistics, written out plainly: per row the global
// max M, sum_s sum_s * exp(max_s - M), lse = M + log(sum), and the target logit (its
// owner's, the others being 0). Returns lse (N) and sets loss_sum over the valid rows.
Tensor fold_by_hand(const std::vector<Tensor>& stats, const Tensor& ls, double& loss_sum) {
  Tensor lse = Tensor::empty({kRows}, DType::f64);
  loss_sum = 0;
  for (std::int64_t i = 0; i < kRows; ++i) {
    double m = -std::numeric_limits<double>::infinity();
    for (const Tensor& s : stats) m = std::max(m, s.item(i));
    double sum = 0, target = 0;
    for (const Tensor& s : stats) {
      sum += s.item(kRows + i) * std::exp(s.item(i) - m);
      target += s.item(2 * kRows + i);
    }
    lse.data<double>()[i] = m + std::log(sum);
    if (ls.item(i) != ops::kIgnoreLabel) loss_sum += lse.item(i) - target;
  }
  return lse;
}

TEST(VocabShardOps, CrossEntropyShardsReproduceTheFullHead) {
  const double grad_scale = 1.0 / 40;
  const Tensor x = test::random_tensor({kRows, kChannels}, "x");
  const Tensor emb = test::random_tensor({kVocab, kChannels}, "emb");
  const Tensor ls = labels();
  Tensor dx_full = Tensor::empty({kRows, kChannels}, DType::f64);
  Tensor demb_full = test::random_tensor({kVocab, kChannels}, "demb0");
  const Tensor demb0 = test::clone(demb_full);
  const auto full = ops::tied_head_cross_entropy(x, emb, ls, grad_scale, &dx_full, &demb_full);

  for (const std::vector<Shard>& split : kSplits) {
    std::vector<Tensor> stats;
    for (const Shard& shard : split) {
      stats.push_back(Tensor::empty({ops::kShardStatRows, kRows}, DType::f64));
      ops::cross_entropy_shard_stats(x, rows_of(emb, shard), shard.begin, ls, stats.back());
    }
    double loss_sum = 0;
    const Tensor lse = fold_by_hand(stats, ls, loss_sum);
    EXPECT_NEAR(loss_sum, full.loss_sum, 1e-12 * full.loss_sum) << name(split);

    // The merge op folds the same statistics stacked as an all-gather returns them.
    Tensor all_stats = Tensor::empty({ops::kShardStatRows * std::int64_t(split.size()), kRows},
                                     DType::f64);
    for (std::size_t s = 0; s < split.size(); ++s)
      all_stats.rows(ops::kShardStatRows * s, ops::kShardStatRows * (s + 1)).copy_from(stats[s]);
    Tensor merged_lse = Tensor::empty({kRows}, DType::f64);
    const auto merged = ops::merge_cross_entropy_shard_stats(all_stats, ls, merged_lse);
    EXPECT_EQ(merged.valid, full.valid) << name(split);
    EXPECT_NEAR(merged.loss_sum, full.loss_sum, 1e-12 * full.loss_sum) << name(split);
    EXPECT_LT(test::rel_error(merged_lse, lse), 1e-14) << name(split);

    Tensor dx = Tensor::zeros({kRows, kChannels}, DType::f64);
    for (const Shard& shard : split) {
      Tensor dx_term = Tensor::empty({kRows, kChannels}, DType::f64);
      Tensor demb_shard = rows_of(demb0, shard);
      ops::cross_entropy_shard_backward(x, rows_of(emb, shard), shard.begin, ls, lse,
                                        grad_scale, &dx_term, &demb_shard);
      ops::add_inplace(dx, dx_term);
      EXPECT_LT(test::rel_error(demb_shard, demb_full.rows(shard.begin, shard.end)), 1e-12)
          << name(split) << " shard at " << shard.begin;
    }
    EXPECT_LT(test::rel_error(dx, dx_full), 1e-12) << name(split);
  }
}

TEST(VocabShardOps, EmbeddingShardsSumToTheFullLookup) {
  std::vector<std::int32_t> id_values(kRows);
  for (std::int64_t i = 0; i < kRows; ++i) id_values[i] = std::int32_t((i * i + 7) % kVocab);
  const Tensor ids = test::int_tensor(id_values);  // repeats: backward adds into one row
  const Tensor emb = test::random_tensor({kVocab, kChannels}, "emb");
  const Tensor dout = test::random_tensor({kRows, kChannels}, "dout");
  Tensor expected = Tensor::empty({kRows, kChannels}, DType::f64);
  ops::embedding_forward(ids, emb, expected);
  Tensor demb_full = test::random_tensor({kVocab, kChannels}, "demb0");
  const Tensor demb0 = test::clone(demb_full);
  ops::embedding_backward(ids, dout, demb_full);

  for (const std::vector<Shard>& split : kSplits) {
    Tensor sum = Tensor::zeros({kRows, kChannels}, DType::f64);
    for (const Shard& shard : split) {
      Tensor out = Tensor::empty({kRows, kChannels}, DType::f64);
      ops::embedding_shard_forward(ids, rows_of(emb, shard), shard.begin, out);
      ops::add_inplace(sum, out);  // rows of other shards' ids are exact zeros
      Tensor demb_shard = rows_of(demb0, shard);
      ops::embedding_shard_backward(ids, dout, shard.begin, demb_shard);
      EXPECT_EQ(test::max_abs_diff(demb_shard, demb_full.rows(shard.begin, shard.end)), 0.0)
          << name(split) << " shard at " << shard.begin;
    }
    EXPECT_EQ(test::max_abs_diff(sum, expected), 0.0) << name(split);
  }
}

TEST(VocabShardOps, ErrorsNameTheBadValue) {
  const Tensor emb_shard = Tensor::zeros({5, 2}, DType::f64);
  Tensor out = Tensor::empty({3, 2}, DType::f64);
  EXPECT_NE(error_of([&] {
              ops::embedding_shard_forward(test::int_tensor({7, -2, 9}), emb_shard, 5, out);
            }).find("token id -2 at position 1 is outside the vocabulary [0, V)"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              ops::embedding_shard_backward(test::int_tensor({7, 9, 1}), out, -1, out);
            }).find("vocab_begin must be >= 0, got -1"),
            std::string::npos);

  const Tensor x = Tensor::zeros({3, 2}, DType::f64);
  Tensor stats = Tensor::empty({ops::kShardStatRows, 3}, DType::f64);
  EXPECT_NE(error_of([&] {
              ops::cross_entropy_shard_stats(x, emb_shard, 5, test::int_tensor({1, -3, 8}),
                                             stats);
            }).find("label -3 at position 1 is outside the vocabulary [0, V)"),
            std::string::npos);
  Tensor stats32 = Tensor::empty({ops::kShardStatRows, 3}, DType::f32);
  EXPECT_NE(error_of([&] {
              ops::cross_entropy_shard_stats(x, emb_shard, 5, test::int_tensor({1, 2, 8}),
                                             stats32);
            }).find("stats must be f64 on the cpu"),
            std::string::npos);
  Tensor lse = Tensor::empty({3}, DType::f64);
  EXPECT_NE(error_of([&] {
              ops::merge_cross_entropy_shard_stats(Tensor::zeros({4, 3}, DType::f64),
                                                   test::int_tensor({1, 2, 8}), lse);
            }).find("must stack 3 rows per shard"),
            std::string::npos);
}

}  // namespace
}  // namespace ratrain
