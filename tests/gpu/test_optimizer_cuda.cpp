// CUDA optimizer kernels against the CPU reference in f64: three AdamW steps on f32
// buffers (fp32 arithmetic: 1e-6 relative on parameters and moments), the sum of
// squares (double accumulation: 1e-12) for f32 and bf16, and in-place scaling.
// 1,000,003 elements: several grid-stride rounds, not a multiple of any block.
#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

using OptimizerCuda = gpu_test::GpuTest;
constexpr std::int64_t kElements = 1000003;

TEST_F(OptimizerCuda, AdamWMatchesTheCpuReference) {
  Tensor p_ref = random_tensor({kElements}, "p", DType::f32, 0.0, 0.1);
  Tensor m_ref = Tensor::zeros({kElements}, DType::f64);
  Tensor v_ref = Tensor::zeros({kElements}, DType::f64);
  Tensor p = on_device(p_ref, DType::f32);
  Tensor m = Tensor::zeros({kElements}, DType::f32, Device::cuda);
  Tensor v = Tensor::zeros({kElements}, DType::f32, Device::cuda);
  for (std::int64_t step = 1; step <= 3; ++step) {
    std::string name = "g";
    name += std::to_string(step);
    const Tensor g = random_tensor({kElements}, name, DType::f32, 0.0, 0.01);
    const ops::AdamWHyper h{.lr = 1e-3, .step = step};
    ops::adamw_update(p_ref, g, m_ref, v_ref, h);
    ops::adamw_update(p, on_device(g, DType::f32), m, v, h);
  }
  EXPECT_LT(relative_error(p, p_ref), 1e-6);
  EXPECT_LT(relative_error(m, m_ref), 1e-6);
  EXPECT_LT(relative_error(v, v_ref), 1e-6);
}

TEST_F(OptimizerCuda, SumOfSquaresAndScaleMatchTheCpuReference) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    const Tensor x = random_tensor({kElements}, "x", dtype);
    Tensor xd = on_device(x, dtype);
    const double expected = ops::sum_of_squares(x);
    EXPECT_NEAR(ops::sum_of_squares(xd), expected, 1e-12 * expected) << dtype_name(dtype);
    ops::scale_inplace(xd, 0.5);  // exact in both storage types
    Tensor half = x.to(DType::f64);
    ops::scale_inplace(half, 0.5);
    EXPECT_EQ(relative_error(xd, half), 0.0) << dtype_name(dtype);
  }
}

TEST_F(OptimizerCuda, AdamWRefusesBf16Moments) {
  Tensor p = Tensor::zeros({8}, DType::bf16, Device::cuda);
  Tensor g = p, m = p.to(Device::cuda), v = p.to(Device::cuda);
  EXPECT_THROW(ops::adamw_update(p, g, m, v, {.lr = 1e-3}), Error);
}

}  // namespace
}  // namespace ratrain
