// CUDA tied head + cross-entropy against the CPU reference in f64 on the same rounded
// inputs: vocabularies 97, 1000 and 32000 (at V = 32000 a logits block holds 2048 rows,
// so N = 2500 crosses one), N = 1, 37, 2500, some labels -100 and one on the last
// vocabulary row, forward only and with gradients; all labels ignored; a bad label;
// count_valid_labels.
// Tolerances:
// - loss: f32 1e-5 (pedantic fp32 GEMM, fp32 softmax, row losses summed in double);
//   bf16 1e-4 (bf16 products are exact in fp32 and accumulated in fp32 by the tensor
//   cores, so only the accumulation order differs from f32; a 10x margin).
// - dx, demb: f32 1e-5 as above; bf16 1e-2 (the logits gradient is rounded to bf16 for
//   the backward GEMMs and dx to bf16 storage: 2^-9 relative per element).
#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

// (n) i32 host labels in [0, vocab), keyed by `name`: label 0 is vocab - 1 (the last
// row of emb) and every fifth from the fourth on is ignored.
Tensor random_labels(std::int64_t n, std::int64_t vocab, const std::string& name) {
  Tensor labels = Tensor::empty({n}, DType::i32);
  const CounterRng rng(5, name);
  auto* l = labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i)
    l[i] = i % 5 == 3 ? ops::kIgnoreLabel
                      : static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(i),
                                                            static_cast<std::uint64_t>(vocab)));
  l[0] = static_cast<std::int32_t>(vocab - 1);
  return labels;
}

struct HeadShape {
  DType dtype;
  std::int64_t vocab, rows, columns;  // V, N, C
};

void PrintTo(const HeadShape& p, std::ostream* os) {
  *os << dtype_name(p.dtype) << " V=" << p.vocab << " N=" << p.rows << " C=" << p.columns;
}

// Both storage types at each (V, N, C). The largest CPU reference (V = 32000, N = 2500,
// C = 16, three f64 GEMMs through OpenBLAS) took 1.7 s on 2 cores; C stays small there.
std::vector<HeadShape> head_shapes() {
  struct Sizes {
    std::int64_t vocab, rows, columns;
  };
  const Sizes sizes[] = {{97, 37, 64}, {1000, 1, 256}, {1000, 37, 16}, {32000, 37, 64},
                         {32000, 2500, 16}};
  std::vector<HeadShape> shapes;
  for (const DType dtype : {DType::f32, DType::bf16})
    for (const Sizes& s : sizes) shapes.push_back({dtype, s.vocab, s.rows, s.columns});
  return shapes;
}

class CrossEntropyCuda : public gpu_test::GpuTest,
                         public ::testing::WithParamInterface<HeadShape> {};

TEST_P(CrossEntropyCuda, MatchesTheCpuReference) {
  const auto [dtype, vocab, rows, columns] = GetParam();
  const bool f32 = dtype == DType::f32;
  const double loss_tolerance = f32 ? 1e-5 : 1e-4, grad_tolerance = f32 ? 1e-5 : 1e-2;
  // Logits of standard deviation ~2: a peaked but not one-hot softmax.
  const Tensor x = random_tensor({rows, columns}, "x", dtype);
  const Tensor emb = random_tensor({vocab, columns}, "emb", dtype, 0.0,
                                   2.0 / std::sqrt(static_cast<double>(columns)));
  const Tensor labels = random_labels(rows, vocab, "labels");
  const double grad_scale = 1.0 / static_cast<double>(ops::count_valid_labels(labels));  // a mean
  // demb accumulates onto this. Kept below the gradient's size (rms ~ grad_scale / 4 at
  // V = 32000) so that the norm-wise error measures the gradient, yet large enough that
  // an overwrite instead of an accumulation fails.
  const Tensor demb0 =
      random_tensor({vocab, columns}, "demb0", DType::f32, 0.0, 0.1 * grad_scale);

  Tensor dx_ref = Tensor::empty({rows, columns}, DType::f64), demb_ref = demb0.to(DType::f64);
  const ops::CrossEntropyResult ref =
      ops::tied_head_cross_entropy(x, emb, labels, grad_scale, &dx_ref, &demb_ref);

  const Tensor xd = on_device(x, dtype), embd = on_device(emb, dtype);
  const Tensor labels_d = labels.to(Device::cuda);
  const ops::CrossEntropyResult forward =
      ops::tied_head_cross_entropy(xd, embd, labels_d, grad_scale, nullptr, nullptr);
  Tensor dx = Tensor::empty({rows, columns}, dtype, Device::cuda);
  Tensor demb = on_device(demb0, DType::f32);
  const ops::CrossEntropyResult with_grad =
      ops::tied_head_cross_entropy(xd, embd, labels_d, grad_scale, &dx, &demb);

  EXPECT_EQ(forward.valid, ref.valid);
  EXPECT_EQ(with_grad.valid, ref.valid);
  EXPECT_LT(std::abs(forward.loss_sum - ref.loss_sum), loss_tolerance * std::abs(ref.loss_sum));
  // Same logits and the same fixed-order sums: the same bits with or without gradients.
  EXPECT_EQ(with_grad.loss_sum, forward.loss_sum);
  EXPECT_LT(relative_error(dx, dx_ref), grad_tolerance);
  EXPECT_LT(relative_error(demb, demb_ref), grad_tolerance);
}

std::string shape_name(const ::testing::TestParamInfo<HeadShape>& info) {
  const HeadShape& p = info.param;
  return std::string(dtype_name(p.dtype)) + "_V" + std::to_string(p.vocab) + "_N" +
         std::to_string(p.rows) + "_C" + std::to_string(p.columns);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyCuda, ::testing::ValuesIn(head_shapes()), shape_name);

using CrossEntropyCudaEdges = gpu_test::GpuTest;

TEST_F(CrossEntropyCudaEdges, AllLabelsIgnoredGiveZeroLossAndGradients) {
  constexpr std::int64_t kVocab = 97, kRows = 37, kColumns = 16;
  Tensor labels = Tensor::empty({kRows}, DType::i32);
  for (std::int64_t i = 0; i < kRows; ++i) labels.data<std::int32_t>()[i] = ops::kIgnoreLabel;
  const Tensor x = on_device(random_tensor({kRows, kColumns}, "x", DType::f32), DType::f32);
  const Tensor emb = on_device(random_tensor({kVocab, kColumns}, "emb", DType::f32), DType::f32);
  const Tensor demb0 = random_tensor({kVocab, kColumns}, "demb0", DType::f32);
  Tensor dx = on_device(random_tensor({kRows, kColumns}, "dx0", DType::f32), DType::f32);
  Tensor demb = on_device(demb0, DType::f32);

  const ops::CrossEntropyResult result =
      ops::tied_head_cross_entropy(x, emb, labels.to(Device::cuda), 1.0, &dx, &demb);
  EXPECT_EQ(result.valid, 0);
  EXPECT_EQ(result.loss_sum, 0.0);
  EXPECT_EQ(ops::sum_of_squares(dx), 0.0);          // overwritten with zeros
  EXPECT_EQ(relative_error(demb, demb0), 0.0);      // nothing added
}

TEST_F(CrossEntropyCudaEdges, ABadLabelNamesTheFirstOneAndItsPosition) {
  constexpr std::int64_t kVocab = 97, kRows = 37, kColumns = 16;
  Tensor labels = random_labels(kRows, kVocab, "labels");
  labels.data<std::int32_t>()[5] = kVocab;
  labels.data<std::int32_t>()[9] = -7;
  const Tensor x = on_device(random_tensor({kRows, kColumns}, "x", DType::f32), DType::f32);
  const Tensor emb = on_device(random_tensor({kVocab, kColumns}, "emb", DType::f32), DType::f32);
  const Tensor labels_d = labels.to(Device::cuda);
  const std::string message = error_of(
      [&] { ops::tied_head_cross_entropy(x, emb, labels_d, 1.0, nullptr, nullptr); });
  EXPECT_NE(message.find("label 97 at position 5"), std::string::npos) << message;
}

TEST_F(CrossEntropyCudaEdges, CountValidLabelsMatchesTheCpu) {
  for (const std::int64_t rows : {1, 37, 5003}) {
    const Tensor labels = random_labels(rows, 1000, "labels");
    EXPECT_EQ(ops::count_valid_labels(labels.to(Device::cuda)), ops::count_valid_labels(labels))
        << rows << " labels";
  }
}

}  // namespace
}  // namespace ratrain
