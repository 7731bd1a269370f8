// index_tensor and host_values_of (runtime/index_tensors.hpp): a list's i32 tensor is made
// once per distinct content and device and handed out again, shared, for the same content.
// (The device half, kept host copies, is tests/gpu/test_sequence_rows_cuda.cpp's.)
#include <gtest/gtest.h>

#include "runtime/error.hpp"
#include "runtime/index_tensors.hpp"

namespace ratrain {
namespace {

std::vector<std::int32_t> values_of(const Tensor& t) {
  return {t.data<std::int32_t>(), t.data<std::int32_t>() + t.numel()};
}

TEST(IndexTensors, TheSameListIsMadeOnceAndShared) {
  const std::vector<std::int32_t> list{5, 3, 9, 0};
  const std::size_t before = cached_index_tensors();
  const Tensor first = index_tensor(list, Device::cpu);
  EXPECT_EQ(first.dtype(), DType::i32);
  EXPECT_EQ(first.shape(), Shape{4});
  EXPECT_EQ(values_of(first), list);
  EXPECT_EQ(cached_index_tensors(), before + 1);

  const Tensor again = index_tensor(std::vector<std::int32_t>(list), Device::cpu);
  EXPECT_EQ(again.raw(), first.raw()) << "the same content must come from the cache";
  EXPECT_EQ(cached_index_tensors(), before + 1);
}

TEST(IndexTensors, DifferentListsAreDifferentTensors) {
  const Tensor a = index_tensor({1, 2, 3}, Device::cpu);
  const Tensor b = index_tensor({1, 2, 4}, Device::cpu);   // same length, one value differs
  const Tensor c = index_tensor({1, 2, 3, 0}, Device::cpu);  // a longer list, same prefix
  EXPECT_NE(a.raw(), b.raw());
  EXPECT_NE(a.raw(), c.raw());
  EXPECT_EQ(values_of(a), (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(values_of(b), (std::vector<std::int32_t>{1, 2, 4}));
  EXPECT_EQ(values_of(c), (std::vector<std::int32_t>{1, 2, 3, 0}));
  EXPECT_EQ(index_tensor({}, Device::cpu).numel(), 0);
}

TEST(IndexTensors, HostValuesOfAHostListAreTheListItself) {
  const Tensor list = index_tensor({7, 1}, Device::cpu);
  EXPECT_EQ(host_values_of(list).raw(), list.raw());
  EXPECT_THROW(host_values_of(Tensor::zeros({2}, DType::f32)), Error);
}

}  // namespace
}  // namespace ratrain
