// Attention over an explicit key set (attention_forward_keys / attention_backward_keys)
// and the log-sum-exp merge (attention_merge) against the whole-sequence ops: all keys
// at once, the keys split into two disjoint sets whose results are merged, and a block
// of queries at an offset, which is what one rank of sequence parallelism computes.
// All in f64 with the same double accumulation as the reference, so only summation
// order differs: tolerance 1e-12.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

constexpr std::int64_t kBatch = 2, kSeq = 29, kHeads = 3, kDh = 8;
constexpr double kTolerance = 1e-12;

std::string describe(const Sparsity& s) {
  return "D=" + std::to_string(s.dilation) + " W=" + std::to_string(s.window) +
         " P=" + std::to_string(s.initial);
}

const Sparsity kRules[] = {Sparsity::dense(), {4, 0, 0}, {4, 5, 0}, {3, 2, 7}, {-1, 7, 2}};

Shape rows_shape(std::int64_t rows) { return {kBatch, rows, kHeads, kDh}; }
Shape lse_shape(std::int64_t rows) { return {kBatch, kHeads, rows}; }

// Inputs and the whole-sequence reference results of one rule; (B, T, H, dh) and lse
// (B, H, T).
struct Problem {
  Tensor q = test::random_tensor(rows_shape(kSeq), "q");
  Tensor k = test::random_tensor(rows_shape(kSeq), "k");
  Tensor v = test::random_tensor(rows_shape(kSeq), "v");
  Tensor dout = test::random_tensor(rows_shape(kSeq), "dout");
  Tensor out = Tensor::empty(rows_shape(kSeq), DType::f64);
  Tensor lse = Tensor::empty(lse_shape(kSeq), DType::f64);
  Tensor dq = Tensor::empty(rows_shape(kSeq), DType::f64);
  Tensor dk = Tensor::empty(rows_shape(kSeq), DType::f64);
  Tensor dv = Tensor::empty(rows_shape(kSeq), DType::f64);

  explicit Problem(const Sparsity& rule) {
    ops::attention_forward(q, k, v, rule, out, lse);
    ops::attention_backward(q, k, v, out, lse, dout, rule, dq, dk, dv);
  }
};

// The rows `positions` (along T) of a (B, T, H, dh) tensor, as a new tensor.
Tensor take_rows(const Tensor& t, const std::vector<std::int32_t>& positions) {
  const std::int64_t rows = std::int64_t(positions.size());
  Tensor taken = Tensor::empty(rows_shape(rows), DType::f64);
  for (std::int64_t b = 0; b < kBatch; ++b)
    for (std::int64_t n = 0; n < rows; ++n)
      for (std::int64_t e = 0; e < kHeads * kDh; ++e)
        taken.data<double>()[(b * rows + n) * kHeads * kDh + e] =
            t.item((b * t.dim(1) + positions[n]) * kHeads * kDh + e);
  return taken;
}

// Columns [begin, end) (along T) of a (B, H, T) tensor, as a new tensor.
Tensor take_lse(const Tensor& lse, std::int64_t begin, std::int64_t end) {
  Tensor taken = Tensor::empty(lse_shape(end - begin), DType::f64);
  for (std::int64_t bh = 0; bh < kBatch * kHeads; ++bh)
    for (std::int64_t t = begin; t < end; ++t)
      taken.data<double>()[bh * (end - begin) + t - begin] = lse.item(bh * lse.dim(2) + t);
  return taken;
}

std::vector<std::int32_t> positions_in(std::int32_t begin, std::int32_t end) {
  std::vector<std::int32_t> positions;
  for (std::int32_t j = begin; j < end; ++j) positions.push_back(j);
  return positions;
}

// Forward and backward over one key set; dq, dk, dv start from zero.
struct KeySetResult {
  Tensor out, lse, dq, dk, dv;
};
KeySetResult attend_keys(const Problem& p, const Sparsity& rule,
                         const std::vector<std::int32_t>& positions) {
  const Tensor k = take_rows(p.k, positions), v = take_rows(p.v, positions);
  const Tensor key_positions = test::int_tensor(positions);
  const std::int64_t keys = std::int64_t(positions.size());
  KeySetResult r{Tensor::empty(rows_shape(kSeq), DType::f64),
                 Tensor::empty(lse_shape(kSeq), DType::f64),
                 Tensor::zeros(rows_shape(kSeq), DType::f64),
                 Tensor::zeros(rows_shape(keys), DType::f64),
                 Tensor::zeros(rows_shape(keys), DType::f64)};
  ops::attention_forward_keys(p.q, 0, k, v, key_positions, rule, r.out, r.lse);
  // The backward of a partial key set takes the FINAL out and lse.
  ops::attention_backward_keys(p.q, 0, k, v, key_positions, p.out, p.lse, p.dout, rule, r.dq,
                               r.dk, r.dv);
  return r;
}

TEST(AttentionKeys, AllKeysEqualWholeSequence) {
  for (const Sparsity& rule : kRules) {
    const Problem p(rule);
    const KeySetResult r = attend_keys(p, rule, positions_in(0, kSeq));
    EXPECT_LT(test::max_abs_diff(r.out, p.out), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(r.lse, p.lse), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(r.dq, p.dq), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(r.dk, p.dk), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(r.dv, p.dv), kTolerance) << describe(rule);
  }
}

TEST(AttentionKeys, DisjointSplitMergedEqualsWholeSequence) {
  // Interleaved sets, so that both hold keys visible to most queries.
  std::vector<std::int32_t> first, second;
  for (std::int32_t j = 0; j < kSeq; ++j) (j % 3 == 1 || j > 20 ? first : second).push_back(j);
  for (const Sparsity& rule : kRules) {
    const Problem p(rule);
    KeySetResult a = attend_keys(p, rule, first);
    const KeySetResult b = attend_keys(p, rule, second);
    ops::attention_merge(a.out, a.lse, b.out, b.lse);
    EXPECT_LT(test::max_abs_diff(a.out, p.out), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(a.lse, p.lse), kTolerance) << describe(rule);
    // dq sums over the two sets; each key's dk, dv comes from exactly one set.
    ops::add_inplace(a.dq, b.dq);
    EXPECT_LT(test::max_abs_diff(a.dq, p.dq), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(a.dk, take_rows(p.dk, first)), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(a.dv, take_rows(p.dv, first)), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(b.dk, take_rows(p.dk, second)), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(b.dv, take_rows(p.dv, second)), kTolerance) << describe(rule);
  }
}

// Queries [10, 22) over the keys [0, 22): the rows of the whole-sequence result.
TEST(AttentionKeys, QueryBlockAtAnOffset) {
  constexpr std::int32_t begin = 10, end = 22;
  for (const Sparsity& rule : kRules) {
    const Problem p(rule);
    const std::vector<std::int32_t> queries = positions_in(begin, end), keys = positions_in(0, end);
    const Tensor q = take_rows(p.q, queries), k = take_rows(p.k, keys), v = take_rows(p.v, keys);
    const Tensor key_positions = test::int_tensor(keys);
    Tensor out = Tensor::empty(rows_shape(end - begin), DType::f64);
    Tensor lse = Tensor::empty(lse_shape(end - begin), DType::f64);
    ops::attention_forward_keys(q, begin, k, v, key_positions, rule, out, lse);
    EXPECT_LT(test::max_abs_diff(out, take_rows(p.out, queries)), kTolerance) << describe(rule);
    EXPECT_LT(test::max_abs_diff(lse, take_lse(p.lse, begin, end)), kTolerance) << describe(rule);

    Tensor dq = Tensor::zeros(q.shape(), DType::f64), dk = Tensor::zeros(k.shape(), DType::f64),
           dv = Tensor::zeros(k.shape(), DType::f64);
    ops::attention_backward_keys(q, begin, k, v, key_positions, take_rows(p.out, queries),
                                 take_lse(p.lse, begin, end), take_rows(p.dout, queries), rule,
                                 dq, dk, dv);
    EXPECT_LT(test::max_abs_diff(dq, take_rows(p.dq, queries)), kTolerance) << describe(rule);
  }
}

TEST(AttentionKeys, BackwardAccumulates) {
  const Sparsity rule{4, 5, 0};
  const Problem p(rule);
  const std::vector<std::int32_t> keys = positions_in(0, kSeq);
  const Tensor key_positions = test::int_tensor(keys);
  Tensor dq = Tensor::empty(p.q.shape(), DType::f64), dk = Tensor::empty(p.q.shape(), DType::f64),
         dv = Tensor::empty(p.q.shape(), DType::f64);
  for (Tensor* t : {&dq, &dk, &dv})
    for (std::int64_t i = 0; i < t->numel(); ++i) t->data<double>()[i] = 1.0;
  ops::attention_backward_keys(p.q, 0, p.k, p.v, key_positions, p.out, p.lse, p.dout, rule, dq,
                               dk, dv);
  for (Tensor* t : {&dq, &dk, &dv})
    for (std::int64_t i = 0; i < t->numel(); ++i) t->data<double>()[i] -= 1.0;
  EXPECT_LT(test::max_abs_diff(dq, p.dq), kTolerance);
  EXPECT_LT(test::max_abs_diff(dk, p.dk), kTolerance);
  EXPECT_LT(test::max_abs_diff(dv, p.dv), kTolerance);
}

// Keys all after the queries: nothing is visible, and the result is the merge identity.
TEST(AttentionKeys, EmptyKeySetIsTheMergeIdentity) {
  const Problem p(Sparsity::dense());
  const std::vector<std::int32_t> queries = positions_in(0, 10), keys = positions_in(10, kSeq);
  const Tensor q = take_rows(p.q, queries);
  Tensor out = Tensor::empty(q.shape(), DType::f64), lse = Tensor::empty(lse_shape(10), DType::f64);
  ops::attention_forward_keys(q, 0, take_rows(p.k, keys), take_rows(p.v, keys),
                              test::int_tensor(keys), Sparsity::dense(), out, lse);
  EXPECT_EQ(test::norm(out), 0.0);
  for (std::int64_t i = 0; i < lse.numel(); ++i)
    EXPECT_EQ(lse.item(i), -std::numeric_limits<double>::infinity());

  Tensor merged = take_rows(p.out, queries), merged_lse = take_lse(p.lse, 0, 10);
  ops::attention_merge(merged, merged_lse, out, lse);  // adding nothing
  EXPECT_EQ(test::max_abs_diff(merged, take_rows(p.out, queries)), 0.0);
  EXPECT_EQ(test::max_abs_diff(merged_lse, take_lse(p.lse, 0, 10)), 0.0);
  ops::attention_merge(out, lse, merged, merged_lse);  // adding to nothing
  EXPECT_EQ(test::max_abs_diff(out, take_rows(p.out, queries)), 0.0);
  EXPECT_EQ(test::max_abs_diff(lse, take_lse(p.lse, 0, 10)), 0.0);
}

TEST(AttentionKeys, BadKeyPositionsAreRejected) {
  const Tensor q = Tensor::zeros(rows_shape(4), DType::f64);
  const Tensor k = Tensor::zeros(rows_shape(3), DType::f64);
  Tensor out = Tensor::empty(q.shape(), DType::f64), lse = Tensor::empty(lse_shape(4), DType::f64);
  auto forward = [&](const Tensor& positions) {
    return error_of([&] {
      ops::attention_forward_keys(q, 0, k, k, positions, Sparsity::dense(), out, lse);
    });
  };
  EXPECT_NE(forward(test::int_tensor({0, 2, 2})).find("strictly increasing"), std::string::npos);
  EXPECT_NE(forward(test::int_tensor({3, 1, 2})).find("entry 1 is 1 after 3"), std::string::npos);
  EXPECT_NE(forward(test::int_tensor({-1, 1, 2})).find("negative"), std::string::npos);
  EXPECT_NE(forward(test::int_tensor({0, 1})).find("key_positions"), std::string::npos);
  EXPECT_NE(forward(Tensor::zeros({3}, DType::f64)).find("must be i32"), std::string::npos);
}

TEST(AttentionKeys, MismatchedShapesAreRejected) {
  const Tensor q = Tensor::zeros(rows_shape(4), DType::f64);
  const Tensor k = Tensor::zeros(rows_shape(3), DType::f64);
  const Tensor v = Tensor::zeros(rows_shape(4), DType::f64);  // k has 3 rows
  const Tensor positions = test::int_tensor({0, 1, 2});
  Tensor out = Tensor::empty(q.shape(), DType::f64), lse = Tensor::empty(lse_shape(4), DType::f64);
  EXPECT_NE(error_of([&] {
              ops::attention_forward_keys(q, 0, k, v, positions, Sparsity::dense(), out, lse);
            }).find("v (B, Tk, H, dh)"),
            std::string::npos);
  Tensor short_lse = Tensor::empty(lse_shape(3), DType::f64);
  EXPECT_NE(error_of([&] { ops::attention_merge(out, short_lse, out, lse); }).find("lse (B, H, T)"),
            std::string::npos);
}

}  // namespace
}  // namespace ratrain
