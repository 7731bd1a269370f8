// CUDA linear layer (cuBLASLt) forward and backward against the CPU reference in f64
// on the same rounded inputs, at shapes that are not multiples of any tile.
// Tolerances: f32 1e-5 (CUBLAS_COMPUTE_32F_PEDANTIC: plain fp32, no TF32); bf16 1e-2
// (fp32 accumulation, output rounded to 8 mantissa bits: 2^-9 per element).
#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

using LinearShape = std::tuple<DType, std::int64_t, std::int64_t, std::int64_t>;  // dtype, N, I, O

class LinearCuda : public gpu_test::GpuTest, public ::testing::WithParamInterface<LinearShape> {};

TEST_P(LinearCuda, MatchesTheCpuReference) {
  const auto& [dtype, rows, in, out] = GetParam();
  const double tolerance = dtype == DType::f32 ? 1e-5 : 1e-2;
  const Tensor x = random_tensor({rows, in}, "x", dtype);
  const Tensor w = random_tensor({out, in}, "w", dtype, 0.0, 0.05);
  const Tensor dy = random_tensor({rows, out}, "dy", dtype);
  const Tensor dw0 = random_tensor({out, in}, "dw0", dtype);  // dW accumulates onto this

  Tensor y_ref = Tensor::empty({rows, out}, DType::f64), dx_ref = Tensor::empty({rows, in}, DType::f64);
  Tensor dw_ref = dw0.to(DType::f64);
  ops::linear_forward(x, w, y_ref);
  ops::linear_backward(x, w, dy, &dx_ref, dw_ref);

  const Tensor xd = on_device(x, dtype), wd = on_device(w, dtype);
  Tensor y = Tensor::empty({rows, out}, dtype, Device::cuda);
  Tensor dx = Tensor::empty({rows, in}, dtype, Device::cuda), dw = on_device(dw0, dtype);
  ops::linear_forward(xd, wd, y);
  ops::linear_backward(xd, wd, on_device(dy, dtype), &dx, dw);

  EXPECT_LT(relative_error(y, y_ref), tolerance);
  EXPECT_LT(relative_error(dx, dx_ref), tolerance);
  EXPECT_LT(relative_error(dw, dw_ref), tolerance);
}

std::string shape_name(const ::testing::TestParamInfo<LinearShape>& info) {
  const auto& [dtype, rows, in, out] = info.param;
  return std::string(dtype_name(dtype)) + "_" + std::to_string(rows) + "x" + std::to_string(in) +
         "x" + std::to_string(out);
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearCuda,
                         ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                                            ::testing::Values(1, 37, 515),
                                            ::testing::Values(64, 200),
                                            ::testing::Values(136, 1000)),
                         shape_name);

}  // namespace
}  // namespace ratrain
