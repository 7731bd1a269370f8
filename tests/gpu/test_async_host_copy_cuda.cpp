// AsyncHostCopies from the GPU (runtime/async_host_copy.hpp): a copy sees the work the
// compute stream queued before it, work queued after order_compute_after() does not
// overtake it, and wait() may be called from another thread (the checkpoint writer's).
// Skipped without a GPU.
#include <gtest/gtest.h>

#include <thread>

#include "runtime/async_host_copy.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/tensor.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace ratrain {
namespace {

using AsyncHostCopy = gpu_test::GpuTest;

// Index of the first byte of `t` that is not `value`, or -1.
std::int64_t first_byte_not(const Tensor& t, unsigned char value) {
  const auto* bytes = static_cast<const unsigned char*>(t.raw());
  for (std::size_t i = 0; i < t.nbytes(); ++i)
    if (bytes[i] != value) return static_cast<std::int64_t>(i);
  return -1;
}

// 256 MiB: the copy over PCIe takes milliseconds, a memset of the same bytes in device
// memory well under one, so a fill that did not wait for the copy would overtake it.
TEST_F(AsyncHostCopy, OrderedAfterEarlierAndBeforeLaterComputeWork) {
  const std::int64_t n = std::int64_t{64} << 20;
  Tensor device = Tensor::empty({n}, DType::f32, Device::cuda);
  Tensor host = Tensor::empty_pinned({n}, DType::f32);
  fill_bytes(host.raw(), Device::cpu, host.nbytes(), 0x00);
  fill_bytes(device.raw(), Device::cuda, device.nbytes(), 0x3F);  // queued before the copy
  AsyncHostCopies copies;
  copies.copy_to_host(host.raw(), device.raw(), Device::cuda, device.nbytes());
  copies.close();
  copies.order_compute_after();
  fill_bytes(device.raw(), Device::cuda, device.nbytes(), 0x00);  // must wait for the copy
  std::thread([&] { copies.wait(); }).join();
  EXPECT_EQ(first_byte_not(host, 0x3F), -1);
  EXPECT_EQ(first_byte_not(device.to(Device::cpu), 0x00), -1);
}

TEST_F(AsyncHostCopy, PiecesLandAtTheirOffsets) {
  Tensor device = Tensor::empty({1000}, DType::f32, Device::cuda);
  Tensor ramp = Tensor::empty({1000}, DType::f32);
  for (int i = 0; i < 1000; ++i) ramp.data<float>()[i] = static_cast<float>(i);
  device.copy_from(ramp);
  Tensor host = Tensor::empty_pinned({600}, DType::f32);
  AsyncHostCopies copies;  // two ranges of a flat buffer, packed: what a ZeRO shard does
  copies.copy_to_host(host.raw(), device.flat_view(100, {200}).raw(), Device::cuda, 800);
  copies.copy_to_host(host.flat_view(200, {400}).raw(), device.flat_view(600, {400}).raw(),
                      Device::cuda, 1600);
  copies.close();
  copies.wait();
  for (int i = 0; i < 200; ++i) ASSERT_EQ(host.item(i), 100 + i);
  for (int i = 0; i < 400; ++i) ASSERT_EQ(host.item(200 + i), 600 + i);
}

}  // namespace
}  // namespace ratrain
