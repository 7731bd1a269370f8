// Central finite-difference checks, in double, of every op that has a backward.
// Each check uses loss = sum(out * W) with fixed random W, so the analytic gradient
// comes from calling the backward with dout = W. Tolerance: with eps = 1e-6 the
// difference quotient carries ~1e-10 relative round-off and ~1e-12 truncation error,
// so a norm-wise relative error above 1e-6 means a wrong formula, not noise.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace ratrain {
namespace {

using test::numeric_grad;
using test::random_tensor;
using test::rel_error;
using test::weighted_sum;

constexpr double kTolerance = 1e-6;

void expect_gradient(Tensor& input, const Tensor& analytic, const std::function<double()>& loss,
                     const std::string& what) {
  const Tensor numeric = numeric_grad(input, loss);
  EXPECT_LT(rel_error(analytic, numeric), kTolerance) << what;
}

TEST(Gradcheck, Embedding) {
  const Tensor ids = test::int_tensor({0, 3, 1, 3, 6, 0, 2, 3, 5});  // repeats accumulate
  Tensor emb = random_tensor({7, 5}, "emb");
  const Tensor w = random_tensor({9, 5}, "w");
  Tensor out = Tensor::empty({9, 5}, DType::f64);
  auto loss = [&] {
    ops::embedding_forward(ids, emb, out);
    return weighted_sum(out, w);
  };
  const Tensor demb0 = random_tensor({7, 5}, "demb0");
  Tensor demb = test::clone(demb0);
  ops::embedding_backward(ids, w, demb);  // accumulates onto demb0
  expect_gradient(emb, test::minus(demb, demb0), loss, "demb");
}

TEST(Gradcheck, RmsNormAndAccumulatedWeightGradient) {
  Tensor x = random_tensor({4, 6}, "x", 2.0);
  Tensor w = random_tensor({6}, "w");
  const Tensor wy = random_tensor({4, 6}, "wy");
  Tensor y = Tensor::empty({4, 6}, DType::f64), rstd = Tensor::empty({4}, DType::f64);
  auto loss = [&] {
    ops::rmsnorm_forward(x, w, 1e-6, y, rstd);
    return weighted_sum(y, wy);
  };
  loss();
  Tensor dx = random_tensor({4, 6}, "garbage");  // overwritten
  const Tensor dw0 = random_tensor({6}, "dw0");
  Tensor dw = test::clone(dw0);
  ops::rmsnorm_backward(x, w, rstd, wy, dx, dw);
  const Tensor dw_once = test::minus(dw, dw0);
  expect_gradient(x, dx, loss, "dx");
  expect_gradient(w, dw_once, loss, "dw");

  // dw is accumulated: a second backward adds the same gradient again. (loss() first
  // recomputes rstd at the unperturbed inputs.)
  loss();
  ops::rmsnorm_backward(x, w, rstd, wy, dx, dw);
  for (std::int64_t c = 0; c < 6; ++c)
    EXPECT_NEAR(dw.item(c), dw0.item(c) + 2 * dw_once.item(c), 1e-12) << "dw[" << c << "]";
}

TEST(Gradcheck, Linear) {
  Tensor x = random_tensor({5, 4}, "x");
  Tensor W = random_tensor({3, 4}, "W");
  const Tensor wy = random_tensor({5, 3}, "wy");
  Tensor y = Tensor::empty({5, 3}, DType::f64);
  auto loss = [&] {
    ops::linear_forward(x, W, y);
    return weighted_sum(y, wy);
  };
  Tensor dx = random_tensor({5, 4}, "garbage");
  const Tensor dW0 = random_tensor({3, 4}, "dW0");
  Tensor dW = test::clone(dW0);
  ops::linear_backward(x, W, wy, &dx, dW);
  const Tensor dW_once = test::minus(dW, dW0);
  expect_gradient(x, dx, loss, "dx");
  expect_gradient(W, dW_once, loss, "dW");

  // Without dx only dW is produced, again accumulated.
  ops::linear_backward(x, W, wy, nullptr, dW);
  for (std::int64_t i = 0; i < dW.numel(); ++i)
    EXPECT_NEAR(dW.item(i), dW0.item(i) + 2 * dW_once.item(i), 1e-12);
}

TEST(Gradcheck, GatedScan) {
  // C = 67 crosses the kernel's 64-channel chunk.
  const Shape shape{2, 5, 67};
  Tensor g = random_tensor(shape, "g", 2.0), k = random_tensor(shape, "k"),
         v = random_tensor(shape, "v");
  const Tensor wK = random_tensor(shape, "wK"), wV = random_tensor(shape, "wV");
  Tensor gate = Tensor::empty(shape, DType::f64), K = Tensor::empty(shape, DType::f64),
         V = Tensor::empty(shape, DType::f64);
  auto loss = [&] {
    ops::gated_scan_forward(g, k, v, gate, K, V);
    return weighted_sum(K, wK) + weighted_sum(V, wV);
  };
  loss();
  Tensor dg = Tensor::empty(shape, DType::f64), dk = Tensor::empty(shape, DType::f64),
         dv = Tensor::empty(shape, DType::f64);
  ops::gated_scan_backward(gate, k, v, K, V, wK, wV, dg, dk, dv);
  expect_gradient(g, dg, loss, "dg");
  expect_gradient(k, dk, loss, "dk");
  expect_gradient(v, dv, loss, "dv");
}

TEST(Gradcheck, RopeOutOfPlaceAndInPlace) {
  const Shape shape{2, 3, 2, 6};
  const double base = 100;
  const std::int64_t offset = 5;
  Tensor x = random_tensor(shape, "x");
  const Tensor wy = random_tensor(shape, "wy");
  Tensor y = Tensor::empty(shape, DType::f64);
  auto loss = [&] {
    ops::rope_forward(x, base, offset, y);
    return weighted_sum(y, wy);
  };
  Tensor dx = Tensor::empty(shape, DType::f64);
  ops::rope_backward(wy, base, offset, dx);
  expect_gradient(x, dx, loss, "dx");

  // In place: y aliases x in the forward, dx aliases dy in the backward.
  auto loss_in_place = [&] {
    Tensor buffer = test::clone(x);
    ops::rope_forward(buffer, base, offset, buffer);
    return weighted_sum(buffer, wy);
  };
  Tensor d_in_place = test::clone(wy);
  ops::rope_backward(d_in_place, base, offset, d_in_place);
  expect_gradient(x, d_in_place, loss_in_place, "dx in place");
  EXPECT_EQ(test::max_abs_diff(d_in_place, dx), 0.0);
}

struct RuleCase {
  const char* name;
  Sparsity rule;
};
// Names the case in gtest output instead of dumping its bytes.
void PrintTo(const RuleCase& c, std::ostream* os) { *os << c.name; }

class AttentionGradcheck : public ::testing::TestWithParam<RuleCase> {};

TEST_P(AttentionGradcheck, QueryKeyValue) {
  const Sparsity rule = GetParam().rule;
  const Shape shape{2, 9, 2, 4};  // (B, T, H, dh)
  Tensor q = random_tensor(shape, "q"), k = random_tensor(shape, "k"),
         v = random_tensor(shape, "v");
  const Tensor w = random_tensor(shape, "w");
  Tensor out = Tensor::empty(shape, DType::f64), lse = Tensor::empty({2, 2, 9}, DType::f64);
  auto loss = [&] {
    ops::attention_forward(q, k, v, rule, out, lse);
    return weighted_sum(out, w);
  };
  loss();
  Tensor dq = random_tensor(shape, "garbage"), dk = random_tensor(shape, "garbage"),
         dv = random_tensor(shape, "garbage");  // all overwritten
  ops::attention_backward(q, k, v, out, lse, w, rule, dq, dk, dv);
  expect_gradient(q, dq, loss, "dq");
  expect_gradient(k, dk, loss, "dk");
  expect_gradient(v, dv, loss, "dv");
}

INSTANTIATE_TEST_SUITE_P(
    Rules, AttentionGradcheck,
    ::testing::Values(RuleCase{"dense", Sparsity::dense()},
                      RuleCase{"dilated_D3_W1_P2", {3, 1, 2}},
                      RuleCase{"local_W2_P1", {-1, 2, 1}},
                      RuleCase{"dilated_D4_W0_P0", {4, 0, 0}},
                      RuleCase{"prefix_beyond_dilation_D2_W1_P5", {2, 1, 5}},
                      RuleCase{"local_W0_P0_self_only", {-1, 0, 0}}),
    [](const ::testing::TestParamInfo<RuleCase>& p) { return std::string(p.param.name); });

TEST(Gradcheck, OutputGate) {
  const Shape shape{3, 5};
  Tensor attn = random_tensor(shape, "attn"), o = random_tensor(shape, "o", 2.0);
  const Tensor w = random_tensor(shape, "w");
  Tensor y = Tensor::empty(shape, DType::f64);
  auto loss = [&] {
    ops::output_gate_forward(attn, o, y);
    return weighted_sum(y, w);
  };
  Tensor dattn = Tensor::empty(shape, DType::f64), d_o = Tensor::empty(shape, DType::f64);
  ops::output_gate_backward(attn, o, w, dattn, d_o);
  expect_gradient(attn, dattn, loss, "dattn");
  expect_gradient(o, d_o, loss, "do");
}

TEST(Gradcheck, Gelu) {
  const Shape shape{4, 7};
  Tensor x = random_tensor(shape, "x", 2.0);
  const Tensor w = random_tensor(shape, "w");
  Tensor y = Tensor::empty(shape, DType::f64);
  auto loss = [&] {
    ops::gelu_forward(x, y);
    return weighted_sum(y, w);
  };
  Tensor dx = Tensor::empty(shape, DType::f64);
  ops::gelu_backward(x, w, dx);
  expect_gradient(x, dx, loss, "dx");
}

TEST(Gradcheck, TiedHeadCrossEntropyWithIgnoredLabels) {
  // N = 70 rows cross the kernel's 64-row logits block.
  const std::int64_t n = 70, c = 3, vocab = 5;
  std::vector<std::int32_t> label_values(n);
  for (std::int64_t i = 0; i < n; ++i)
    label_values[i] = i % 7 == 3 ? ops::kIgnoreLabel : std::int32_t((i * 3) % vocab);
  const Tensor labels = test::int_tensor(label_values);
  Tensor x = random_tensor({n, c}, "x"), emb = random_tensor({vocab, c}, "emb");
  const double grad_scale = 0.37;
  auto loss = [&] {
    const auto r = ops::tied_head_cross_entropy(x, emb, labels, 0.0, nullptr, nullptr);
    return grad_scale * r.loss_sum;
  };
  Tensor dx = random_tensor({n, c}, "garbage");
  const Tensor demb0 = random_tensor({vocab, c}, "demb0");
  Tensor demb = test::clone(demb0);
  const auto result = ops::tied_head_cross_entropy(x, emb, labels, grad_scale, &dx, &demb);
  EXPECT_EQ(result.valid, ops::count_valid_labels(labels));
  EXPECT_NEAR(grad_scale * result.loss_sum, loss(), 1e-12) << "loss must not depend on grads";
  expect_gradient(x, dx, loss, "dx");
  expect_gradient(emb, test::minus(demb, demb0), loss, "demb");
  for (std::int64_t i = 0; i < n; ++i) {
    if (label_values[i] != ops::kIgnoreLabel) continue;
    for (std::int64_t j = 0; j < c; ++j)
      EXPECT_EQ(dx.item(i * c + j), 0.0) << "ignored row " << i;
  }
}

}  // namespace
}  // namespace ratrain
