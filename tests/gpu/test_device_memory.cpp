// Device tensors: host <-> device copies (same dtype and converting), zeroing, the
// caching allocator's reuse and its out-of-memory message. Skipped without a GPU.
#include <gtest/gtest.h>

#include "runtime/allocator.hpp"
#include "runtime/device_memory.hpp"
#include "runtime/tensor.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

using DeviceMemory = gpu_test::GpuTest;

Tensor host_ramp(std::int64_t n) {
  Tensor t = Tensor::empty({n}, DType::f32);
  for (std::int64_t i = 0; i < n; ++i) t.data<float>()[i] = 0.25f * static_cast<float>(i) - 3.0f;
  return t;
}

TEST_F(DeviceMemory, RoundTripKeepsEveryBit) {
  const Tensor host = host_ramp(1000);
  const Tensor back = host.to(Device::cuda).to(Device::cpu);
  for (std::int64_t i = 0; i < host.numel(); ++i) EXPECT_EQ(back.item(i), host.item(i));
}

TEST_F(DeviceMemory, ConvertingCopiesRoundToBf16) {
  const Tensor host = host_ramp(64);
  Tensor device = Tensor::empty({64}, DType::bf16, Device::cuda);
  device.copy_from(host);
  const Tensor back = device.to(DType::f32);
  // Every value of the ramp (multiples of 1/4 below 16) is exact in bf16.
  for (std::int64_t i = 0; i < 64; ++i) EXPECT_EQ(back.item(i), host.item(i));
}

// Device-to-device converting copies run on the GPU (runtime/device_convert.cu) and must
// round exactly as the host's bf16 does (nearest even), on values that are not exact.
TEST_F(DeviceMemory, DeviceConversionRoundsLikeTheHost) {
  const std::int64_t n = 100003;  // not a multiple of the launch's block
  Tensor host = Tensor::empty({n}, DType::f32);
  for (std::int64_t i = 0; i < n; ++i) host.data<float>()[i] = 1.0f + 1e-5f * float(i) - 0.37f * float(i % 7);
  const Tensor f32_on_device = host.to(Device::cuda);
  Tensor bf16_on_device = Tensor::empty({n}, DType::bf16, Device::cuda);
  bf16_on_device.copy_from(f32_on_device);
  Tensor f32_again = Tensor::empty({n}, DType::f32, Device::cuda);
  f32_again.copy_from(bf16_on_device);
  const Tensor expected = host.to(DType::bf16).to(DType::f32);
  const Tensor got = f32_again.to(Device::cpu);
  for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(got.item(i), expected.item(i)) << "element " << i;
}

// Tensor::zeros clears; Tensor::empty leaves contents unspecified (poisoned in debug
// builds), so code that accumulates must ask for zeros.
TEST_F(DeviceMemory, ZerosAreZeroEvenInReusedBlocks) {
  { Tensor dirty = host_ramp(300).to(Device::cuda); }  // back to the cache, non-zero
  const Tensor back = Tensor::zeros({300}, DType::f32, Device::cuda).to(Device::cpu);
  for (std::int64_t i = 0; i < 300; ++i) EXPECT_EQ(back.item(i), 0.0);
}

TEST_F(DeviceMemory, ZeroClearsDeviceTensors) {
  Tensor device = host_ramp(300).to(Device::cuda);
  device.zero();
  const Tensor back = device.to(Device::cpu);
  for (std::int64_t i = 0; i < 300; ++i) EXPECT_EQ(back.item(i), 0.0);
}

TEST_F(DeviceMemory, FreedBlocksAreReusedWithoutTheDriver) {
  { Tensor warm = Tensor::empty({1 << 20}, DType::f32, Device::cuda); }
  const std::int64_t before = device_cache_stats().driver_allocations;
  for (int i = 0; i < 10; ++i) Tensor again = Tensor::empty({1 << 20}, DType::f32, Device::cuda);
  EXPECT_EQ(device_cache_stats().driver_allocations, before);
  EXPECT_GE(device_cache_stats().cached_bytes, 4 << 20);
  const MemoryStats stats = memory_stats(Device::cuda);
  EXPECT_GE(stats.peak_bytes, 4 << 20);
  release_cached_device_memory();
  EXPECT_EQ(device_cache_stats().cached_bytes, 0);
}

TEST_F(DeviceMemory, OutOfMemoryNamesTheSize) {
  const std::string message =
      error_of([] { Tensor::empty({std::int64_t{1} << 50}, DType::f32, Device::cuda); });
  EXPECT_NE(message.find("out of GPU memory allocating"), std::string::npos) << message;
}

}  // namespace
}  // namespace ratrain
