// CUDA copy_sequence_rows against the CPU reference, and the row copies, stacks and
// positions of parallel/sequence_rows.hpp on device tensors.
//
// Exact comparisons: assigning moves bits; adding is one fp32 sum rounded once to the
// storage type on the GPU, and the CPU reference adds the same values in f32 (bf16 inputs
// are exact in f32), so rounding its f32 result to bf16 (nearest even, as the kernel's
// __float2bfloat16) gives the same bits. Row sizes H * dh of 15, 16 and 6 elements and
// base addresses offset by one element select every word width the kernel has (16, 8, 4
// bytes and one bf16 element).
#include <string>
#include <tuple>
#include <vector>

#include "kernels/ops.hpp"
#include "parallel/sequence_rows.hpp"
#include "runtime/index_tensors.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

using gpu_test::on_device;
using gpu_test::random_tensor;
using gpu_test::relative_error;

constexpr std::int64_t kBatch = 3, kSrcRows = 11, kDstRows = 13;
const std::vector<std::int32_t> kFrom = {10, 0, 3, 7, 1, 5}, kTo = {12, 0, 4, 6, 11, 2};

// A device tensor of `shape` holding `host`, starting `offset` elements into its storage
// (offset 1 misaligns the base for every word wider than one element).
Tensor device_copy_at(const Tensor& host, DType dtype, std::int64_t offset) {
  const Tensor storage = Tensor::zeros({host.numel() + offset}, dtype, Device::cuda);
  Tensor t = storage.flat_view(offset, host.shape());
  t.copy_from(host);
  return t;
}

struct RowShape {
  std::int64_t heads, dh;
};
using RowsCase = std::tuple<DType, RowShape, ops::Combine, std::int64_t>;  // ..., offset

class CopySequenceRowsCuda : public gpu_test::GpuTest,
                             public ::testing::WithParamInterface<RowsCase> {};

TEST_P(CopySequenceRowsCuda, EqualsTheCpuReferenceBitwise) {
  const auto& [dtype, row, how, offset] = GetParam();
  const Shape src_shape{kBatch, kSrcRows, row.heads, row.dh};
  const Shape dst_shape{kBatch, kDstRows, row.heads, row.dh};
  const Tensor src = random_tensor(src_shape, "src", dtype).to(DType::f32);  // dtype-exact
  const Tensor dst = random_tensor(dst_shape, "dst", dtype).to(DType::f32);

  Tensor reference = dst.to(DType::f32);  // f32 on the CPU, then rounded to dtype
  ops::copy_sequence_rows(src, index_tensor(kFrom, Device::cpu), reference,
                          index_tensor(kTo, Device::cpu), how);
  Tensor got = device_copy_at(dst, dtype, offset);
  ops::copy_sequence_rows(device_copy_at(src, dtype, offset), index_tensor(kFrom, Device::cuda),
                          got, index_tensor(kTo, Device::cuda), how);
  EXPECT_EQ(relative_error(got.to(dtype), reference.to(dtype)), 0.0);
}

std::string case_name(const ::testing::TestParamInfo<RowsCase>& info) {
  const auto& [dtype, row, how, offset] = info.param;
  return std::string(dtype_name(dtype)) + "_row" + std::to_string(row.heads * row.dh) +
         (how == ops::Combine::add ? "_add" : "_assign") + "_offset" + std::to_string(offset);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CopySequenceRowsCuda,
    ::testing::Combine(::testing::Values(DType::f32, DType::bf16),
                       ::testing::Values(RowShape{3, 5}, RowShape{2, 8}, RowShape{1, 6}),
                       ::testing::Values(ops::Combine::assign, ops::Combine::add),
                       ::testing::Values(std::int64_t{0}, std::int64_t{1})),
    case_name);

class SequenceRowsCuda : public gpu_test::GpuTest {};

// The GPU does not check indices (ops.hpp): a pair with one out of range is skipped.
TEST_F(SequenceRowsCuda, AnIndexOutOfRangeSkipsItsRow) {
  const Shape shape{kBatch, kSrcRows, 2, 8};
  const Tensor src = random_tensor(shape, "src", DType::f32);
  const Tensor dst = random_tensor(shape, "dst", DType::f32);
  Tensor got = on_device(dst, DType::f32);
  // Pair 1: source row 101 of 11; pair 2: destination row -3.
  ops::copy_sequence_rows(on_device(src, DType::f32), index_tensor({4, 101, 2}, Device::cuda),
                          got, index_tensor({1, 2, -3}, Device::cuda), ops::Combine::assign);
  Tensor expected = dst.to(DType::f32);
  ops::copy_sequence_rows(src.to(DType::f32), index_tensor({4}, Device::cpu), expected,
                          index_tensor({1}, Device::cpu), ops::Combine::assign);
  EXPECT_EQ(relative_error(got, expected), 0.0);
}

TEST_F(SequenceRowsCuda, IndexTensorsMustBeOnTheDevice) {
  const Tensor src = Tensor::zeros({1, 2, 1, 4}, DType::f32, Device::cuda);
  Tensor dst = Tensor::zeros({1, 2, 1, 4}, DType::f32, Device::cuda);
  const std::string error = error_of([&] {
    ops::copy_sequence_rows(src, index_tensor({0}, Device::cpu), dst,
                            index_tensor({1}, Device::cuda), ops::Combine::assign);
  });
  EXPECT_NE(error.find("src_rows is on cpu"), std::string::npos) << error;
}

// copy_rows, zero_stack and position_tensor of parallel/sequence_rows.hpp on device
// tensors: the same rows as on the host, buffers on the device.
TEST_F(SequenceRowsCuda, CopyRowsAndStacksRunOnTheDevice) {
  for (const DType dtype : {DType::f32, DType::bf16}) {
    const Shape shape{kBatch, kSrcRows, 3, 8};
    const Tensor k = random_tensor(shape, "k", dtype).to(DType::f32);
    const Tensor v = random_tensor(shape, "v", dtype).to(DType::f32);
    const std::vector<std::int64_t> from = {9, 2, 4}, to = {0, 2, 1};

    const Tensor host_stack = zero_stack(2, k, 3);  // (2, B, 3, H, dh)
    copy_rows({k, v}, from, stack_pair(host_stack, 0), to, Combine::assign);
    copy_rows({k, v}, from, stack_pair(host_stack, 0), to, Combine::add);

    const Tensor device_k = on_device(k, dtype), device_v = on_device(v, dtype);
    const Tensor stack = zero_stack(2, device_k, 3);
    EXPECT_EQ(stack.device(), Device::cuda);
    EXPECT_EQ(stack.dtype(), dtype);
    copy_rows({device_k, device_v}, from, stack_pair(stack, 0), to, Combine::assign);
    copy_rows({device_k, device_v}, from, stack_pair(stack, 0), to, Combine::add);
    // Twice a bf16 value is exact, so the host f32 result rounds to the same bits.
    EXPECT_EQ(relative_error(stack.to(dtype), host_stack.to(dtype)), 0.0) << dtype_name(dtype);

    const Tensor positions = position_tensor({3, 7, 40}, Device::cuda);
    EXPECT_EQ(positions.device(), Device::cuda);
    const Tensor host_positions = positions.to(Device::cpu);
    EXPECT_EQ(host_positions.item(0), 3);
    EXPECT_EQ(host_positions.item(2), 40);
  }
}

// Device index lists are uploaded once and their host copy kept (runtime/index_tensors.hpp):
// the same list again is the same device tensor, and its host values come without a copy
// back; a device tensor from elsewhere is copied back.
TEST_F(SequenceRowsCuda, DeviceIndexListsAreUploadedOnceWithTheirHostValues) {
  const std::vector<std::int32_t> list{4, 8, 15, 16, 23, 42};
  const Tensor uploaded = index_tensor(list, Device::cuda);
  EXPECT_EQ(uploaded.device(), Device::cuda);
  EXPECT_EQ(index_tensor(list, Device::cuda).raw(), uploaded.raw());
  const Tensor kept = host_values_of(uploaded);
  EXPECT_EQ(kept.device(), Device::cpu);
  EXPECT_EQ(host_values_of(uploaded).raw(), kept.raw()) << "the kept copy, not a new one";
  const Tensor copied_back = uploaded.to(Device::cpu);
  const Tensor elsewhere = copied_back.to(Device::cuda);  // not from index_tensor
  const Tensor fetched = host_values_of(elsewhere);
  for (std::int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(kept.item(i), list[static_cast<std::size_t>(i)]);
    EXPECT_EQ(copied_back.item(i), list[static_cast<std::size_t>(i)]);
    EXPECT_EQ(fetched.item(i), list[static_cast<std::size_t>(i)]);
  }
}

TEST_F(SequenceRowsCuda, ChunkOperandsMayBeDeviceBf16OrF32) {
  for (const DType dtype : {DType::f32, DType::bf16}) {
    const Tensor q = Tensor::zeros({1, 4, 2, 8}, dtype, Device::cuda);
    const Tensor k = Tensor::zeros(q.shape(), dtype, Device::cuda);
    require_chunk_operands(2, q, {{&k, "k"}}, "test");
    const Tensor host_k = Tensor::zeros(q.shape(), dtype == DType::bf16 ? DType::f32 : dtype);
    const std::string error =
        error_of([&] { require_chunk_operands(2, q, {{&host_k, "k"}}, "test"); });
    EXPECT_NE(error.find("operands mix"), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace ratrain
