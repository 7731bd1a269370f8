// CUDA linear layer (cuBLASLt) forward and backward against the CPU reference in f64
// on the same rounded inputs, at shapes that are not multiples of any tile.
// Tolerances: f32 1e-5 (CUBLAS_COMPUTE_32F_PEDANTIC: plain fp32, no TF32); bf16 1e-2
// (fp32 accumulation, output rounded to 8 mantissa bits: 2^-9 per element). dW is f32
// in both (the GPU's parameter gradients): bf16 products are exact in fp32, so only
// fp32 summation remains and 1e-5 holds for bf16 inputs too.
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
  const Tensor dw0 = random_tensor({out, in}, "dw0", DType::f32);  // dW accumulates onto this

  Tensor y_ref = Tensor::empty({rows, out}, DType::f64), dx_ref = Tensor::empty({rows, in}, DType::f64);
  Tensor dw_ref = dw0.to(DType::f64);
  ops::linear_forward(x, w, y_ref);
  ops::linear_backward(x, w, dy, &dx_ref, dw_ref);

  const Tensor xd = on_device(x, dtype), wd = on_device(w, dtype);
  Tensor y = Tensor::empty({rows, out}, dtype, Device::cuda);
  Tensor dx = Tensor::empty({rows, in}, dtype, Device::cuda), dw = on_device(dw0, DType::f32);
  ops::linear_forward(xd, wd, y);
  ops::linear_backward(xd, wd, on_device(dy, dtype), &dx, dw);

  EXPECT_LT(relative_error(y, y_ref), tolerance);
  EXPECT_LT(relative_error(dx, dx_ref), tolerance);
  EXPECT_LT(relative_error(dw, dw_ref), 1e-5);
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

// Parameters are views of one flat buffer (ParamStore), so a weight or its gradient may
// start at any element: here 2-byte (bf16) or 4-byte (f32) aligned, where cuBLASLt's
// default assumption is 256 bytes.
class LinearCudaViews : public gpu_test::GpuTest, public ::testing::WithParamInterface<DType> {};

TEST_P(LinearCudaViews, MisalignedParameterViewsWork) {
  const DType dtype = GetParam();
  const std::int64_t rows = 40, in = 72, out = 48, offset = 3;
  const Tensor x = random_tensor({rows, in}, "x", dtype);
  const Tensor w = random_tensor({out, in}, "w", dtype, 0.0, 0.05);
  const Tensor dy = random_tensor({rows, out}, "dy", dtype);
  Tensor y_ref = Tensor::empty({rows, out}, DType::f64), dx_ref = Tensor::empty({rows, in}, DType::f64);
  Tensor dw_ref = Tensor::zeros({out, in}, DType::f64);
  ops::linear_forward(x, w, y_ref);
  ops::linear_backward(x, w, dy, &dx_ref, dw_ref);

  const Tensor flat_w = Tensor::empty({offset + out * in}, dtype, Device::cuda);
  const Tensor flat_dw = Tensor::zeros({offset + out * in}, DType::f32, Device::cuda);
  Tensor wd = flat_w.flat_view(offset, {out, in}), dw = flat_dw.flat_view(offset, {out, in});
  wd.copy_from(w);
  Tensor y = Tensor::empty({rows, out}, dtype, Device::cuda);
  Tensor dx = Tensor::empty({rows, in}, dtype, Device::cuda);
  const Tensor xd = on_device(x, dtype);
  ops::linear_forward(xd, wd, y);
  ops::linear_backward(xd, wd, on_device(dy, dtype), &dx, dw);
  const double tolerance = dtype == DType::f32 ? 1e-5 : 1e-2;  // as above
  EXPECT_LT(relative_error(y, y_ref), tolerance);
  EXPECT_LT(relative_error(dx, dx_ref), tolerance);
  EXPECT_LT(relative_error(dw, dw_ref), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Storage, LinearCudaViews, ::testing::Values(DType::f32, DType::bf16),
                         // Not named `info`: the macro's own parameter is (-Wshadow).
                         [](const auto& instance) {
                           return std::string(dtype_name(instance.param));
                         });

}  // namespace
}  // namespace ratrain
