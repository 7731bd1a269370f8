// CUDA RoPE (kernels/cuda/rope.cu) forward and backward against the CPU reference in
// f64 on the same rounded inputs, out of place and in place, at position offsets 0 and
// 1,000,000 (long context: an angle formed in fp32 would be ~0.06 rad off there, a
// relative error of ~3e-2). Head dims 16, 64, 128 and 6 (odd half: one pair per thread);
// T = 1037 spans several blocks and ends in a partial one.
// Tolerances: f32 storage 1e-5 (fp32 rotation of a double-reduced angle, ~2e-7);
// bf16 storage 1e-2 (outputs rounded to 8 mantissa bits, 2^-9 relative).
#include <string>
#include <tuple>

#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

constexpr double kBase = 10000.0;

using RopeCase = std::tuple<DType, std::int64_t, std::int64_t>;  // dtype, dh, position offset

class RopeCuda : public gpu_test::GpuTest, public ::testing::WithParamInterface<RopeCase> {};

// "bf16_dh128_offset1000000".
std::string case_name(const ::testing::TestParamInfo<RopeCase>& info) {
  const auto& [dtype, head_dim, offset] = info.param;
  return std::string(dtype_name(dtype)) + "_dh" + std::to_string(head_dim) + "_offset" +
         std::to_string(offset);
}

TEST_P(RopeCuda, MatchesTheCpuReferenceInAndOutOfPlace) {
  const auto& [dtype, head_dim, offset] = GetParam();
  const double tolerance = dtype == DType::f32 ? 1e-5 : 1e-2;
  const Shape shape = {2, 1037, 3, head_dim};  // (B, T, H, dh)
  const Tensor x = random_tensor(shape, "x", dtype);
  const Tensor dy = random_tensor(shape, "dy", dtype);
  Tensor y_ref = Tensor::empty(shape, DType::f64), dx_ref = Tensor::empty(shape, DType::f64);
  ops::rope_forward(x, kBase, offset, y_ref);
  ops::rope_backward(dy, kBase, offset, dx_ref);

  Tensor y = Tensor::empty(shape, dtype, Device::cuda);
  Tensor dx = Tensor::empty(shape, dtype, Device::cuda);
  ops::rope_forward(on_device(x, dtype), kBase, offset, y);
  ops::rope_backward(on_device(dy, dtype), kBase, offset, dx);
  EXPECT_LT(relative_error(y, y_ref), tolerance) << "forward, out of place";
  EXPECT_LT(relative_error(dx, dx_ref), tolerance) << "backward, out of place";

  Tensor in_place = on_device(x, dtype);
  ops::rope_forward(in_place, kBase, offset, in_place);
  EXPECT_EQ(relative_error(in_place, y), 0.0) << "forward, in place";
  in_place = on_device(dy, dtype);
  ops::rope_backward(in_place, kBase, offset, in_place);
  EXPECT_EQ(relative_error(in_place, dx), 0.0) << "backward, in place";
}

INSTANTIATE_TEST_SUITE_P(Shapes, RopeCuda,
                         ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                                            ::testing::Values(6, 16, 64, 128),
                                            ::testing::Values(0, 1000000)),
                         case_name);

}  // namespace
}  // namespace ratrain
