// AsyncHostCopies on the host (runtime/async_host_copy.hpp): copies from host memory are
// done at once, the joins cover only what close() ended, and misuse is an error in every
// build (the GPU behaviour: tests/gpu/test_async_host_copy_cuda.cpp).
#include <gtest/gtest.h>

#include "runtime/async_host_copy.hpp"
#include "runtime/tensor.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

TEST(AsyncHostCopies, HostCopiesAreDoneAtOnce) {
  Tensor src = Tensor::empty({5}, DType::f32);
  for (int i = 0; i < 5; ++i) src.data<float>()[i] = 1.5f * static_cast<float>(i);
  Tensor dst = Tensor::empty_pinned({5}, DType::f32);
  AsyncHostCopies copies;
  copies.copy_to_host(dst.raw(), src.raw(), Device::cpu, src.nbytes());
  src.data<float>()[2] = -1.0f;  // the copy has already been taken
  copies.close();
  copies.order_compute_after();
  copies.wait();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(dst.item(i), 1.5 * i);
}

TEST(AsyncHostCopies, JoinsNeedCloseAndCloseEndsTheCopies) {
  Tensor src = Tensor::zeros({2}, DType::f32), dst = Tensor::empty_pinned({2}, DType::f32);
  AsyncHostCopies copies;
  EXPECT_NE(error_of([&] { copies.wait(); }).find("wait() before close()"), std::string::npos);
  EXPECT_NE(error_of([&] { copies.order_compute_after(); }).find("before close()"),
            std::string::npos);
  copies.close();
  EXPECT_NE(error_of([&] { copies.copy_to_host(dst.raw(), src.raw(), Device::cpu, 8); })
                .find("copy queued after close()"),
            std::string::npos);
}

TEST(AsyncHostCopies, PinnedTensorsAreHostTensors) {
  const Tensor t = Tensor::empty_pinned({3, 4}, DType::bf16);
  EXPECT_EQ(t.device(), Device::cpu);
  EXPECT_EQ(t.shape(), (Shape{3, 4}));
  EXPECT_EQ(t.nbytes(), 24u);
}

}  // namespace
}  // namespace ratrain
