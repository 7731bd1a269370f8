// CUDA RMSNorm forward/backward against the CPU reference in f64 on the same (rounded)
// inputs, at row widths that are not multiples of the block (C = 200, 96) and row
// counts below and above one dw slab (64 rows).
// Tolerances: f32 storage 1e-5 (fp32 sums over <= 2048 terms, ~1e-6 observed class);
// bf16 storage 1e-2 (each output is rounded to 8 mantissa bits: 2^-9 = 2e-3 relative
// per element, plus inputs of dx rounded likewise).
#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

class RmsNormCuda
    : public gpu_test::GpuTest,
      public ::testing::WithParamInterface<std::tuple<DType, std::int64_t, std::int64_t>> {};

// "bf16_rows7_cols200": readable ctest names.
std::string shape_name(const ::testing::TestParamInfo<RmsNormCuda::ParamType>& info) {
  const auto& [dtype, rows, columns] = info.param;
  return std::string(dtype_name(dtype)) + "_rows" + std::to_string(rows) + "_cols" +
         std::to_string(columns);
}

TEST_P(RmsNormCuda, MatchesTheCpuReference) {
  const auto [dtype, rows, columns] = GetParam();
  const double tolerance = dtype == DType::f32 ? 1e-5 : 1e-2;
  const Tensor x = random_tensor({rows, columns}, "x", dtype, 0.0, 2.0);
  const Tensor w = random_tensor({columns}, "w", dtype, 1.0, 0.3);
  const Tensor dy = random_tensor({rows, columns}, "dy", dtype);
  const Tensor dw0 = random_tensor({columns}, "dw0", DType::f32);  // dw accumulates onto this

  // Reference in f64.
  Tensor y_ref = Tensor::empty({rows, columns}, DType::f64);
  Tensor r_ref = Tensor::empty({rows}, DType::f64);
  ops::rmsnorm_forward(x, w, 1e-6, y_ref, r_ref);
  Tensor dx_ref = Tensor::empty({rows, columns}, DType::f64), dw_ref = dw0.to(DType::f64);
  ops::rmsnorm_backward(x, w, r_ref, dy, dx_ref, dw_ref);

  const Tensor xd = on_device(x, dtype), wd = on_device(w, dtype), dyd = on_device(dy, dtype);
  Tensor y = Tensor::empty({rows, columns}, dtype, Device::cuda);
  Tensor rstd = Tensor::empty({rows}, DType::f32, Device::cuda);
  ops::rmsnorm_forward(xd, wd, 1e-6, y, rstd);
  Tensor dx = Tensor::empty({rows, columns}, dtype, Device::cuda), dw = on_device(dw0, DType::f32);
  ops::rmsnorm_backward(xd, wd, rstd, dyd, dx, dw);

  EXPECT_LT(relative_error(y, y_ref), tolerance);
  EXPECT_LT(relative_error(rstd, r_ref), 1e-6);  // fp32 statistic in both storage types
  EXPECT_LT(relative_error(dx, dx_ref), tolerance);
  EXPECT_LT(relative_error(dw, dw_ref), 1e-5);  // f32 (parameter gradient) in both: fp32 sums
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNormCuda,
                         ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                                            ::testing::Values(1, 7, 64, 300),
                                            ::testing::Values(96, 200, 2048)),
                         shape_name);

using RmsNormCudaInPlace = gpu_test::GpuTest;

TEST_F(RmsNormCudaInPlace, BackwardMayOverwriteItsInputGradient) {
  const Tensor x = random_tensor({5, 128}, "x", DType::f32);
  const Tensor w = random_tensor({128}, "w", DType::f32, 1.0, 0.3);
  const Tensor dy = random_tensor({5, 128}, "dy", DType::f32);
  const Tensor xd = on_device(x, DType::f32), wd = on_device(w, DType::f32);
  Tensor y = Tensor::empty({5, 128}, DType::f32, Device::cuda);
  Tensor rstd = Tensor::empty({5}, DType::f32, Device::cuda);
  ops::rmsnorm_forward(xd, wd, 1e-6, y, rstd);
  Tensor separate = Tensor::empty({5, 128}, DType::f32, Device::cuda);
  Tensor dw = Tensor::zeros({128}, DType::f32, Device::cuda);
  ops::rmsnorm_backward(xd, wd, rstd, on_device(dy, DType::f32), separate, dw);
  Tensor in_place = on_device(dy, DType::f32);
  ops::rmsnorm_backward(xd, wd, rstd, in_place, in_place, dw);
  EXPECT_EQ(relative_error(in_place, separate), 0.0);
}

}  // namespace
}  // namespace ratrain
