// Helpers of the GPU tests: a fixture that skips without a GPU (ctest then reports the
// test as skipped), seeded random inputs, and the norm-wise relative error of DESIGN.md
// "Numerics".
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "runtime/device_memory.hpp"
#include "runtime/rng.hpp"
#include "runtime/tensor.hpp"

namespace ratrain::gpu_test {

class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device (or a build without CUDA)";
  }
};

// f64 host tensor of N(0, std) draws, keyed by `name`; rounded through `storage` (e.g.
// bf16) so that a reference computed from it sees exactly the kernel's inputs.
inline Tensor random_tensor(const Shape& shape, const std::string& name, DType storage,
                            double mean = 0.0, double std = 1.0) {
  Tensor t = Tensor::empty(shape, DType::f64);
  const CounterRng rng(11, name);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<double>()[i] = mean + std * rng.normal(static_cast<std::uint64_t>(i));
  return t.to(storage).to(DType::f64);
}

// ||got - ref|| / ||ref||, both read as doubles (got may live on the GPU); the absolute
// ||got - ref|| where the reference is exactly zero (e.g. attention gradients at T = 1).
inline double relative_error(const Tensor& got, const Tensor& ref) {
  const Tensor a = got.to(DType::f64), b = ref.to(DType::f64);
  double diff = 0, norm = 0;
  for (std::int64_t i = 0; i < b.numel(); ++i) {
    diff += (a.item(i) - b.item(i)) * (a.item(i) - b.item(i));
    norm += b.item(i) * b.item(i);
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// A device copy of `host` in `dtype`.
inline Tensor on_device(const Tensor& host, DType dtype) {
  Tensor t = Tensor::empty(host.shape(), dtype, Device::cuda);
  t.copy_from(host);
  return t;
}

}  // namespace ratrain::gpu_test
