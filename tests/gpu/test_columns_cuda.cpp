// CUDA split_columns / concat_columns against the CPU reference: five parts (W_in's
// o, q, k, v, g), 37 rows, part widths of 7 elements (rows whose byte size is no multiple
// of 16) and 64. Pure copies, so the comparison is exact.
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

constexpr int kParts = 5;
constexpr std::int64_t kRows = 37;

using ColumnsShape = std::tuple<DType, std::int64_t>;  // dtype, C (one part's width)

class ColumnsCuda : public gpu_test::GpuTest, public ::testing::WithParamInterface<ColumnsShape> {};

TEST_P(ColumnsCuda, SplitMatchesTheCpuReferenceAndConcatRoundTrips) {
  const auto& [dtype, columns] = GetParam();
  const Tensor x = random_tensor({kRows, kParts * columns}, "x", dtype);

  std::vector<Tensor> reference, parts;  // kParts x (N, C): f64 on the host, dtype on the GPU
  for (int s = 0; s < kParts; ++s) {
    reference.push_back(Tensor::empty({kRows, columns}, DType::f64));
    parts.push_back(Tensor::empty({kRows, columns}, dtype, Device::cuda));
  }
  std::vector<Tensor*> reference_out, parts_out;
  std::vector<const Tensor*> parts_in;
  for (int s = 0; s < kParts; ++s) {
    reference_out.push_back(&reference[s]);
    parts_out.push_back(&parts[s]);
    parts_in.push_back(&parts[s]);
  }
  ops::split_columns(x, reference_out.data(), kParts);
  ops::split_columns(on_device(x, dtype), parts_out.data(), kParts);
  for (int s = 0; s < kParts; ++s)
    EXPECT_EQ(relative_error(parts[s], reference[s]), 0.0) << "part " << s;

  Tensor back = Tensor::empty({kRows, kParts * columns}, dtype, Device::cuda);
  ops::concat_columns(parts_in.data(), kParts, back);
  EXPECT_EQ(relative_error(back, x), 0.0);
}

std::string shape_name(const ::testing::TestParamInfo<ColumnsShape>& info) {
  const auto& [dtype, columns] = info.param;
  return std::string(dtype_name(dtype)) + "_cols" + std::to_string(columns);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ColumnsCuda,
                         ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                                            ::testing::Values(7, 64)),
                         shape_name);

}  // namespace
}  // namespace ratrain
