// The attention visibility rule: for_each_visible_key against the is_visible
// definition, and attention_forward against a naive reference that scores every key
// and masks with is_visible (tiny T only: the reference holds a score per key).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace ratrain {
namespace {

std::string describe(const Sparsity& s, std::int64_t seq) {
  return "D=" + std::to_string(s.dilation) + " W=" + std::to_string(s.window) +
         " P=" + std::to_string(s.initial) + " T=" + std::to_string(seq);
}

TEST(VisibleKeys, EnumeratorMatchesPredicateInIncreasingOrder) {
  for (int dilation : {-1, 1, 2, 3, 4, 7, 64})
    for (int window : {0, 1, 2, 5, 100})
      for (int initial : {0, 1, 3, 6, 100})
        for (std::int64_t seq : {1, 17, 64}) {
          const Sparsity rule{dilation, window, initial};
          for (std::int64_t i = 0; i < seq; ++i) {
            std::vector<std::int64_t> enumerated, expected;
            for_each_visible_key(rule, i, [&](std::int64_t j) { enumerated.push_back(j); });
            for (std::int64_t j = 0; j < seq; ++j)
              if (is_visible(rule, i, j)) expected.push_back(j);
            ASSERT_EQ(enumerated, expected) << describe(rule, seq) << " i=" << i;
          }
        }
}

// out (B, T, H, dh) and lse (B, H, T) by the definition: softmax over all j with
// is_visible(i, j) of scale * q_i . k_j, in double.
void naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Sparsity& rule,
                     Tensor& out, Tensor& lse) {
  const std::int64_t batch = q.dim(0), seq = q.dim(1), heads = q.dim(2), dh = q.dim(3);
  const double scale = 1.0 / std::sqrt(double(dh));
  auto at = [&](std::int64_t b, std::int64_t t, std::int64_t h) {
    return ((b * seq + t) * heads + h) * dh;
  };
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t i = 0; i < seq; ++i) {
        std::vector<double> scores(seq, -std::numeric_limits<double>::infinity());  // (T)
        double max = -std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < seq; ++j) {
          if (!is_visible(rule, i, j)) continue;
          double s = 0;
          for (std::int64_t c = 0; c < dh; ++c)
            s += q.item(at(b, i, h) + c) * k.item(at(b, j, h) + c);
          scores[j] = scale * s;
          max = std::max(max, scores[j]);
        }
        double sum = 0;
        for (double s : scores) sum += std::exp(s - max);
        for (std::int64_t c = 0; c < dh; ++c) {
          double o = 0;
          for (std::int64_t j = 0; j < seq; ++j)
            o += std::exp(scores[j] - max) / sum * v.item(at(b, j, h) + c);
          out.data<double>()[at(b, i, h) + c] = o;
        }
        lse.data<double>()[(b * heads + h) * seq + i] = max + std::log(sum);
      }
}

struct Case {
  const char* name;
  Sparsity rule;
};
// Names the case in gtest output instead of dumping its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class AttentionVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionVsReference, ForwardMatchesMaskedReference) {
  const Sparsity rule = GetParam().rule;
  for (std::int64_t seq : {1, 17, 40}) {
    const Shape shape{2, seq, 3, 8};
    const Tensor q = test::random_tensor(shape, "q"), k = test::random_tensor(shape, "k"),
                 v = test::random_tensor(shape, "v");
    Tensor out = Tensor::empty(shape, DType::f64), lse = Tensor::empty({2, 3, seq}, DType::f64);
    Tensor ref_out = Tensor::empty(shape, DType::f64),
           ref_lse = Tensor::empty({2, 3, seq}, DType::f64);
    ops::attention_forward(q, k, v, rule, out, lse);
    naive_attention(q, k, v, rule, ref_out, ref_lse);
    // Both in double; only summation order differs.
    EXPECT_LT(test::max_abs_diff(out, ref_out), 1e-12) << describe(rule, seq);
    EXPECT_LT(test::max_abs_diff(lse, ref_lse), 1e-12) << describe(rule, seq);
  }
}

INSTANTIATE_TEST_SUITE_P(
    EdgeCases, AttentionVsReference,
    ::testing::Values(Case{"dense", Sparsity::dense()},
                      Case{"prefix_at_least_dilation_D4_W1_P6", {4, 1, 6}},
                      Case{"window_beyond_T_D4_W50_P0", {4, 50, 0}},
                      Case{"dilation_beyond_T_D64_W2_P1", {64, 2, 1}},
                      Case{"dilation_one_is_dense_D1_W3_P2", {1, 3, 2}},
                      Case{"local_only_W3_P2", {-1, 3, 2}},
                      Case{"local_only_self_W0_P0", {-1, 0, 0}},
                      Case{"window_zero_D3_W0_P2", {3, 0, 2}},
                      Case{"prefix_zero_D5_W2_P0", {5, 2, 0}},
                      Case{"dilation_two_D2_W0_P0", {2, 0, 0}}),
    [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

TEST(AttentionRule, DilationOneEqualsDense) {
  const Shape shape{1, 33, 2, 8};
  const Tensor q = test::random_tensor(shape, "q"), k = test::random_tensor(shape, "k"),
               v = test::random_tensor(shape, "v");
  Tensor dense = Tensor::empty(shape, DType::f64), sparse = Tensor::empty(shape, DType::f64);
  Tensor lse_dense = Tensor::empty({1, 2, 33}, DType::f64),
         lse_sparse = Tensor::empty({1, 2, 33}, DType::f64);
  ops::attention_forward(q, k, v, Sparsity::dense(), dense, lse_dense);
  ops::attention_forward(q, k, v, Sparsity{1, 4, 3}, sparse, lse_sparse);
  EXPECT_EQ(test::max_abs_diff(dense, sparse), 0.0);
  EXPECT_EQ(test::max_abs_diff(lse_dense, lse_sparse), 0.0);
}

TEST(AttentionRule, InvalidRulesAreRejected) {
  const Shape shape{1, 4, 1, 2};
  const Tensor q = Tensor::zeros(shape, DType::f64);
  Tensor out = Tensor::empty(shape, DType::f64), lse = Tensor::empty({1, 1, 4}, DType::f64);
  EXPECT_THROW(ops::attention_forward(q, q, q, Sparsity{0, 0, 0}, out, lse), Error);
  EXPECT_THROW(ops::attention_forward(q, q, q, Sparsity{-2, 0, 0}, out, lse), Error);
  EXPECT_THROW(ops::attention_forward(q, q, q, Sparsity{4, -1, 0}, out, lse), Error);
  EXPECT_THROW(ops::attention_forward(q, q, q, Sparsity{4, 0, -1}, out, lse), Error);
}

}  // namespace
}  // namespace ratrain
