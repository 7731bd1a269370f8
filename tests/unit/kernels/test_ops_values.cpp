// Exact-value checks of single ops against hand computations, and the error paths
// (bad ids and labels, dtype, shape and aliasing errors).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

Tensor values(const Shape& shape, std::initializer_list<double> list) {
  Tensor t = Tensor::empty(shape, DType::f64);
  std::int64_t i = 0;
  for (double x : list) t.data<double>()[i++] = x;
  EXPECT_EQ(i, t.numel());
  return t;
}


TEST(OpValues, RmsNormOfKnownVector) {
  const Tensor x = values({1, 4}, {1, 2, 3, 4}), w = values({4}, {1, 1, 2, 0.5});
  Tensor y = Tensor::empty({1, 4}, DType::f64), rstd = Tensor::empty({1}, DType::f64);
  ops::rmsnorm_forward(x, w, 1e-6, y, rstd);
  const double r = 1 / std::sqrt(30.0 / 4 + 1e-6);  // mean of 1 + 4 + 9 + 16
  EXPECT_NEAR(rstd.item(0), r, 1e-15);
  const double expected[] = {r, 2 * r, 6 * r, 2 * r};
  for (int c = 0; c < 4; ++c) EXPECT_NEAR(y.item(c), expected[c], 1e-15) << c;
}

TEST(OpValues, RopeAtPositionZeroIsIdentity) {
  const Tensor x = test::random_tensor({2, 1, 3, 8}, "x");
  Tensor y = Tensor::empty(x.shape(), DType::f64);
  ops::rope_forward(x, 10000, 0, y);
  EXPECT_EQ(test::max_abs_diff(x, y), 0.0);
}

TEST(OpValues, RopeQuarterTurn) {
  // dh = 4: pair c = 1 turns by p * base^(-1/2); base = (2/pi)^2 makes that pi/2 at p = 1,
  // so (x1, x3) -> (-x3, x1). Pair c = 0 turns by p = 1 radian.
  const double base = 4 / (std::numbers::pi * std::numbers::pi);
  const Tensor x = values({1, 1, 1, 4}, {0.3, 0.7, -1.1, 2.0});
  Tensor y = Tensor::empty(x.shape(), DType::f64);
  ops::rope_forward(x, base, 1, y);
  EXPECT_NEAR(y.item(1), -2.0, 1e-15);
  EXPECT_NEAR(y.item(3), 0.7, 1e-15);
  EXPECT_NEAR(y.item(0), 0.3 * std::cos(1.0) + 1.1 * std::sin(1.0), 1e-15);
  EXPECT_NEAR(y.item(2), -1.1 * std::cos(1.0) + 0.3 * std::sin(1.0), 1e-15);
}

TEST(OpValues, GeluExact) {
  const Tensor x = values({3}, {0, 1, -1});
  Tensor y = Tensor::empty({3}, DType::f64);
  ops::gelu_forward(x, y);
  EXPECT_EQ(y.item(0), 0.0);
  EXPECT_NEAR(y.item(1), 0.8413447460685429, 1e-15);
  EXPECT_NEAR(y.item(2), -0.15865525393145707, 1e-15);
}

TEST(OpValues, GatedScanWithHalfGate) {
  // g = 0 gives a = 1/2, so K_t = sum_{s<=t} 2^-(t-s+1) k_s (zero initial state).
  const Tensor g = Tensor::zeros({1, 4, 1}, DType::f64);
  const Tensor k = values({1, 4, 1}, {1, 2, 3, 4}), v = values({1, 4, 1}, {-4, 0, 8, 2});
  Tensor gate = Tensor::empty(g.shape(), DType::f64), K = Tensor::empty(g.shape(), DType::f64),
         V = Tensor::empty(g.shape(), DType::f64);
  ops::gated_scan_forward(g, k, v, gate, K, V);
  for (std::int64_t t = 0; t < 4; ++t) {
    double k_ref = 0, v_ref = 0;
    for (std::int64_t s = 0; s <= t; ++s) {
      k_ref += std::ldexp(k.item(s), -int(t - s + 1));
      v_ref += std::ldexp(v.item(s), -int(t - s + 1));
    }
    EXPECT_EQ(gate.item(t), 0.5);
    EXPECT_EQ(K.item(t), k_ref) << t;  // dyadic values: exact
    EXPECT_EQ(V.item(t), v_ref) << t;
  }
  EXPECT_EQ(K.item(3), 3.0625);
}

TEST(OpValues, AdamWOneStepByHand) {
  Tensor p = values({2}, {1.0, -2.0}), g = values({2}, {0.5, 0.0});
  Tensor m = Tensor::zeros({2}, DType::f64), v = Tensor::zeros({2}, DType::f64);
  ops::adamw_update(p, g, m, v, {.lr = 0.1, .weight_decay = 0.1, .step = 1});
  // m = 0.1 * 0.5; v = 0.05 * 0.25; bias-corrected m/(sqrt(v)+eps) = 0.5 / (0.5 + 1e-8).
  EXPECT_NEAR(m.item(0), 0.05, 1e-16);
  EXPECT_NEAR(v.item(0), 0.0125, 1e-16);
  EXPECT_NEAR(p.item(0), 1.0 * (1 - 0.01) - 0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
  EXPECT_NEAR(p.item(1), -2.0 * (1 - 0.01), 1e-15);  // zero gradient: decay only

  // A second step uses step = 2 bias correction on the updated moments.
  const double p1 = p.item(0);
  ops::adamw_update(p, g, m, v, {.lr = 0.1, .weight_decay = 0.1, .step = 2});
  const double m2 = 0.9 * 0.05 + 0.1 * 0.5, v2 = 0.95 * 0.0125 + 0.05 * 0.25;
  const double update = (m2 / (1 - 0.81)) / (std::sqrt(v2 / (1 - 0.9025)) + 1e-8);
  EXPECT_NEAR(p.item(0), p1 * 0.99 - 0.1 * update, 1e-15);
}

TEST(OpValues, CrossEntropyOfUniformLogitsIsLogV) {
  const std::int64_t vocab = 11;
  const Tensor x = Tensor::zeros({3, 4}, DType::f64);
  const Tensor emb = test::random_tensor({vocab, 4}, "emb");
  const Tensor labels = test::int_tensor({3, ops::kIgnoreLabel, 10});
  const auto r = ops::tied_head_cross_entropy(x, emb, labels, 1.0, nullptr, nullptr);
  EXPECT_EQ(r.valid, 2);
  EXPECT_NEAR(r.loss_sum, 2 * std::log(double(vocab)), 1e-14);
}

TEST(OpValues, SmallHelpers) {
  Tensor acc = values({3}, {1, 2, 3});
  ops::add_inplace(acc, values({3}, {0.5, -2, 1}));
  EXPECT_EQ(acc.item(0), 1.5);
  EXPECT_EQ(acc.item(1), 0.0);
  EXPECT_EQ(acc.item(2), 4.0);
  EXPECT_EQ(ops::sum_of_squares(acc), 1.5 * 1.5 + 16);
  ops::scale_inplace(acc, -2);
  EXPECT_EQ(acc.item(2), -8.0);
  EXPECT_EQ(ops::count_valid_labels(test::int_tensor({1, -100, 0, -100, 7})), 3);
}

TEST(OpValues, SumOfSquaresOfLargeFloatBufferAccumulatesInDouble) {
  // 3 * 2^20 threes in f32 sum to 9 * 3 * 2^20 > 2^24, past which a float running sum
  // drops bits; the double accumulator is exact.
  Tensor x = Tensor::empty({3 << 20}, DType::f32);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = 3.0f;
  EXPECT_EQ(ops::sum_of_squares(x), 9.0 * (3 << 20));
}

TEST(OpValues, SplitThenConcatRoundTrips) {
  const Tensor x = test::random_tensor({4, 15}, "x");
  Tensor parts[5];
  Tensor* part_ptrs[5];
  for (int s = 0; s < 5; ++s) {
    parts[s] = Tensor::empty({4, 3}, DType::f64);
    part_ptrs[s] = &parts[s];
  }
  ops::split_columns(x, part_ptrs, 5);
  EXPECT_EQ(parts[2].item(1 * 3 + 2), x.item(1 * 15 + 2 * 3 + 2));
  Tensor back = Tensor::empty({4, 15}, DType::f64);
  const Tensor* const_ptrs[5] = {&parts[0], &parts[1], &parts[2], &parts[3], &parts[4]};
  ops::concat_columns(const_ptrs, 5, back);
  EXPECT_EQ(test::max_abs_diff(x, back), 0.0);
}

TEST(OpErrors, BadTokenIdNamesIdAndPosition) {
  std::vector<std::int32_t> id_values(20, 5);
  id_values[17] = 300;
  const Tensor ids = test::int_tensor(id_values);
  const Tensor emb = Tensor::zeros({259, 4}, DType::f32);
  Tensor out = Tensor::empty({20, 4}, DType::f32);
  const std::string msg = error_of([&] { ops::embedding_forward(ids, emb, out); });
  EXPECT_NE(msg.find("token id 300 at position 17 is outside the vocabulary [0, 259)"),
            std::string::npos)
      << msg;
  Tensor demb = Tensor::zeros({259, 4}, DType::f32);
  EXPECT_THROW(ops::embedding_backward(ids, out, demb), Error);
  id_values[17] = -1;
  EXPECT_NE(error_of([&] { ops::embedding_forward(test::int_tensor(id_values), emb, out); })
                .find("token id -1 at position 17"),
            std::string::npos);
}

TEST(OpErrors, BadLabelNamesLabelAndPosition) {
  const Tensor x = Tensor::zeros({4, 2}, DType::f32), emb = Tensor::zeros({7, 2}, DType::f32);
  const Tensor labels = test::int_tensor({1, -100, 7, 2});
  const std::string msg =
      error_of([&] { ops::tied_head_cross_entropy(x, emb, labels, 1.0, nullptr, nullptr); });
  EXPECT_NE(msg.find("label 7 at position 2"), std::string::npos) << msg;
}

TEST(OpErrors, DtypesShapesAndAliasing) {
  const Tensor x16 = Tensor::zeros({2, 3}, DType::bf16);
  Tensor y16 = Tensor::zeros({2, 3}, DType::bf16);
  EXPECT_NE(error_of([&] { ops::gelu_forward(x16, y16); }).find("supports f32 and f64"),
            std::string::npos);

  const Tensor x = Tensor::zeros({2, 3}, DType::f32);
  Tensor y64 = Tensor::zeros({2, 3}, DType::f64);
  EXPECT_NE(error_of([&] { ops::gelu_forward(x, y64); }).find("mix"), std::string::npos);

  Tensor k = Tensor::zeros({2, 3, 1}, DType::f32), wrong = Tensor::zeros({2, 4, 1}, DType::f32);
  const std::string msg = error_of([&] { ops::gated_scan_forward(k, k, k, k, wrong, k); });
  EXPECT_NE(msg.find("gated_scan_forward: K has shape (2, 4, 1), expected (2, 3, 1)"),
            std::string::npos)
      << msg;

  // RoPE in place is allowed, a shifted overlap is not.
  Tensor buffer = Tensor::zeros({2 * 4}, DType::f32);
  const Tensor a = buffer.flat_view(0, {1, 1, 1, 4});
  Tensor shifted = buffer.flat_view(2, {1, 1, 1, 4});
  Tensor same = buffer.flat_view(0, {1, 1, 1, 4});
  EXPECT_NO_THROW(ops::rope_forward(a, 10000, 0, same));
  EXPECT_THROW(ops::rope_forward(a, 10000, 0, shifted), Error);
  EXPECT_THROW(ops::rope_forward(Tensor::zeros({1, 1, 1, 3}, DType::f32), 10000, 0, same),
               Error);  // odd head dim
}

}  // namespace
}  // namespace ratrain
