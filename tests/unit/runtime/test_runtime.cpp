// Runtime basics: tensor views share storage, dtype conversion and bf16 rounding,
// the counter-based RNG's determinism and moments, error messages.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/device_memory.hpp"
#include "runtime/log.hpp"
#include "runtime/rng.hpp"
#include "runtime/tensor.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

TEST(Log, DurationsReadInSecondsWithMilliseconds) {
  EXPECT_EQ(seconds_text(0.5), "0.500 s");
  EXPECT_EQ(seconds_text(12.25), "12.250 s");
  const auto start = std::chrono::steady_clock::now() - std::chrono::milliseconds(50);
  EXPECT_GE(seconds_since(start), 0.05);
}

TEST(Tensor, ViewsShareStorageAndCheckSizes) {
  Tensor t = Tensor::zeros({4, 3}, DType::f32);
  Tensor r = t.rows(1, 3);
  r.data<float>()[0] = 5.0f;
  EXPECT_EQ(t.item(3), 5.0);
  EXPECT_EQ(t.view({12}).item(3), 5.0);
  EXPECT_THROW(t.view({5}), Error);
  EXPECT_THROW(t.data<double>(), Error);
}

TEST(Tensor, ConvertsBetweenFloatTypes) {
  Tensor d = Tensor::empty({3}, DType::f64);
  d.data<double>()[0] = 1.0 / 3.0;
  d.data<double>()[1] = -2.5;
  d.data<double>()[2] = 1e-3;
  const Tensor f = d.to(DType::f32);
  EXPECT_EQ(f.item(0), static_cast<double>(1.0f / 3.0f));
  EXPECT_EQ(f.item(1), -2.5);
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(static_cast<float>(bf16(1.0f)), 1.0f);
  // 1 + 2^-8 lies exactly between 1 and 1 + 2^-7: ties to the even mantissa (1.0).
  EXPECT_EQ(static_cast<float>(bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(static_cast<float>(bf16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);
  EXPECT_TRUE(std::isnan(static_cast<float>(bf16(std::nanf("")))));
}

TEST(CounterRng, DependsOnlyOnSeedKeyAndIndex) {
  const CounterRng a(1, "w"), b(1, "w"), c(2, "w"), d(1, "v");
  EXPECT_EQ(a.normal(17), b.normal(17));
  EXPECT_NE(a.normal(17), c.normal(17));
  EXPECT_NE(a.normal(17), d.normal(17));
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = a.normal(static_cast<std::uint64_t>(i));
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);  // standard error 1/sqrt(n) = 0.0022
  EXPECT_NEAR(sq / n, 1.0, 0.01);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(a.below(static_cast<std::uint64_t>(i), 7), 7u);
}

TEST(Error, NamesTheRankAndTheDetail) {
  set_error_rank(3);
  try {
    RT_REQUIRE(1 == 2, "config key ", "train.iters");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.iters"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("rank 3"), std::string::npos);
  }
  set_error_rank(0);
}

}  // namespace
}  // namespace ratrain

namespace ratrain {
namespace {

TEST(DeviceMemoryWithoutCuda, AllocationFailsWithAClearMessage) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present; tests/gpu covers device memory";
  const std::string message =
      error_of([] { Tensor::empty({16}, DType::f32, Device::cuda); });
  // A build without the CUDA backend says so; a CUDA build on a machine without a GPU
  // (or driver) says that instead of reporting an out-of-memory error.
  EXPECT_TRUE(message.find("no CUDA backend") != std::string::npos ||
              message.find("no CUDA device is visible") != std::string::npos)
      << message;
}

}  // namespace
}  // namespace ratrain
