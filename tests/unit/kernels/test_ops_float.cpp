// The f32 instantiation of every op against the f64 one (itself gradient-checked in
// test_ops_gradcheck), on the same inputs already rounded to f32, so the difference
// is only the f32 path's own rounding. Tolerance 1e-5 norm-wise: f32 epsilon is 6e-8
// and these small shapes accumulate at most a few hundred rounded terms per output.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/ops.hpp"

namespace ratrain {
namespace {

constexpr double kTolerance = 1e-5;

// An f32-representable random tensor in `dtype`.
Tensor input(const Shape& shape, const char* name, DType dtype, double scale = 1.0) {
  return test::random_tensor(shape, name, scale, DType::f32).to(dtype);
}

// Runs `op` for f32 and f64 and compares every returned output.
void expect_f32_matches_f64(const std::function<std::vector<Tensor>(DType)>& op,
                            const std::string& what) {
  const std::vector<Tensor> f32 = op(DType::f32), f64 = op(DType::f64);
  ASSERT_EQ(f32.size(), f64.size());
  for (std::size_t i = 0; i < f32.size(); ++i)
    EXPECT_LT(test::rel_error(f32[i], f64[i]), kTolerance) << what << " output " << i;
}

TEST(FloatPath, Embedding) {
  expect_f32_matches_f64([](DType dt) {
    const Tensor ids = test::int_tensor({2, 0, 2, 1});
    const Tensor emb = input({3, 5}, "emb", dt), dout = input({4, 5}, "dout", dt);
    Tensor out = Tensor::empty({4, 5}, dt), demb = input({3, 5}, "demb0", dt);
    ops::embedding_forward(ids, emb, out);
    ops::embedding_backward(ids, dout, demb);
    return std::vector{out, demb};
  }, "embedding");
}

TEST(FloatPath, RmsNorm) {
  expect_f32_matches_f64([](DType dt) {
    const Tensor x = input({6, 130}, "x", dt, 3.0), w = input({130}, "w", dt),
                 dy = input({6, 130}, "dy", dt);
    Tensor y = Tensor::empty({6, 130}, dt), rstd = Tensor::empty({6}, dt),
           dx = Tensor::empty({6, 130}, dt), dw = input({130}, "dw0", dt);
    ops::rmsnorm_forward(x, w, 1e-6, y, rstd);
    ops::rmsnorm_backward(x, w, rstd, dy, dx, dw);
    return std::vector{y, rstd, dx, dw};
  }, "rmsnorm");
}

TEST(FloatPath, Linear) {
  expect_f32_matches_f64([](DType dt) {
    const Tensor x = input({70, 33}, "x", dt), w = input({17, 33}, "w", dt),
                 dy = input({70, 17}, "dy", dt);
    Tensor y = Tensor::empty({70, 17}, dt), dx = Tensor::empty({70, 33}, dt),
           dw = input({17, 33}, "dw0", dt);
    ops::linear_forward(x, w, y);
    ops::linear_backward(x, w, dy, &dx, dw);
    return std::vector{y, dx, dw};
  }, "linear");
}

TEST(FloatPath, GatedScan) {
  expect_f32_matches_f64([](DType dt) {
    const Shape shape{2, 50, 70};
    const Tensor g = input(shape, "g", dt, 2.0), k = input(shape, "k", dt),
                 v = input(shape, "v", dt), dK = input(shape, "dK", dt),
                 dV = input(shape, "dV", dt);
    Tensor gate = Tensor::empty(shape, dt), K = Tensor::empty(shape, dt),
           V = Tensor::empty(shape, dt), dg = Tensor::empty(shape, dt),
           dk = Tensor::empty(shape, dt), dv = Tensor::empty(shape, dt);
    ops::gated_scan_forward(g, k, v, gate, K, V);
    ops::gated_scan_backward(gate, k, v, K, V, dK, dV, dg, dk, dv);
    return std::vector{gate, K, V, dg, dk, dv};
  }, "gated scan");
}

TEST(FloatPath, Rope) {
  expect_f32_matches_f64([](DType dt) {
    const Shape shape{2, 9, 3, 16};
    const Tensor x = input(shape, "x", dt), dy = input(shape, "dy", dt);
    Tensor y = Tensor::empty(shape, dt), dx = Tensor::empty(shape, dt);
    ops::rope_forward(x, 10000, 100, y);
    ops::rope_backward(dy, 10000, 100, dx);
    return std::vector{y, dx};
  }, "rope");
}

TEST(FloatPath, Attention) {
  for (const Sparsity rule : {Sparsity::dense(), Sparsity{4, 2, 1}, Sparsity{-1, 3, 2}}) {
    expect_f32_matches_f64([&](DType dt) {
      const Shape shape{2, 40, 2, 16};
      const Tensor q = input(shape, "q", dt), k = input(shape, "k", dt),
                   v = input(shape, "v", dt), dout = input(shape, "dout", dt);
      Tensor out = Tensor::empty(shape, dt), lse = Tensor::empty({2, 2, 40}, dt),
             dq = Tensor::empty(shape, dt), dk = Tensor::empty(shape, dt),
             dv = Tensor::empty(shape, dt);
      ops::attention_forward(q, k, v, rule, out, lse);
      ops::attention_backward(q, k, v, out, lse, dout, rule, dq, dk, dv);
      return std::vector{out, lse, dq, dk, dv};
    }, "attention D=" + std::to_string(rule.dilation));
  }
}

TEST(FloatPath, OutputGateAndGelu) {
  expect_f32_matches_f64([](DType dt) {
    const Shape shape{5, 11};
    const Tensor a = input(shape, "a", dt), o = input(shape, "o", dt, 3.0),
                 dy = input(shape, "dy", dt);
    Tensor y = Tensor::empty(shape, dt), da = Tensor::empty(shape, dt),
           d_o = Tensor::empty(shape, dt), g = Tensor::empty(shape, dt),
           dg = Tensor::empty(shape, dt);
    ops::output_gate_forward(a, o, y);
    ops::output_gate_backward(a, o, dy, da, d_o);
    ops::gelu_forward(o, g);
    ops::gelu_backward(o, dy, dg);
    return std::vector{y, da, d_o, g, dg};
  }, "output gate and gelu");
}

TEST(FloatPath, CrossEntropy) {
  expect_f32_matches_f64([](DType dt) {
    const std::int64_t n = 100, c = 8, vocab = 37;
    std::vector<std::int32_t> label_values(n);
    for (std::int64_t i = 0; i < n; ++i)
      label_values[i] = i % 5 == 0 ? ops::kIgnoreLabel : std::int32_t((i * 7) % vocab);
    const Tensor labels = test::int_tensor(label_values);
    const Tensor x = input({n, c}, "x", dt), emb = input({vocab, c}, "emb", dt);
    Tensor dx = Tensor::empty({n, c}, dt), demb = input({vocab, c}, "demb0", dt);
    const auto r = ops::tied_head_cross_entropy(x, emb, labels, 0.01, &dx, &demb);
    Tensor loss = Tensor::empty({1}, DType::f64);
    loss.data<double>()[0] = r.loss_sum;
    return std::vector{loss, dx, demb};
  }, "cross-entropy");
}

TEST(FloatPath, Optimizer) {
  expect_f32_matches_f64([](DType dt) {
    Tensor p = input({1000}, "p", dt), m = input({1000}, "m", dt, 0.1);
    Tensor v32 = test::random_tensor({1000}, "v", 0.1, DType::f32);  // second moment >= 0
    for (std::int64_t i = 0; i < v32.numel(); ++i) v32.data<float>()[i] *= v32.data<float>()[i];
    Tensor v = v32.to(dt);
    Tensor g = input({1000}, "g", dt);
    ops::scale_inplace(g, 0.5);
    Tensor sum = Tensor::empty({1}, DType::f64);
    sum.data<double>()[0] = ops::sum_of_squares(g);
    ops::adamw_update(p, g, m, v, {.lr = 1e-3, .step = 3});
    return std::vector{sum, p, m, v};
  }, "optimizer");
}

}  // namespace
}  // namespace ratrain
