// SampleOrder: a permutation per epoch, deterministic in (seed, epoch), identity when
// unshuffled, and the worked example of sampler.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "io/sampler.hpp"
#include "io_test_util.hpp"

namespace ratrain {
namespace {

using ::ratrain::error_of;
using test::expect_contains;

std::vector<std::int64_t> epoch_order(const SampleOrder& order, std::int64_t epoch) {
  const std::int64_t n = order.num_samples();
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) out[i] = order.sample_at(epoch * n + i);
  return out;
}

std::vector<std::int64_t> identity(std::int64_t n) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  std::iota(out.begin(), out.end(), 0);
  return out;
}

TEST(SampleOrder, EachEpochIsAPermutation) {
  for (const std::int64_t n : {1, 2, 7, 1000, 4097}) {
    const SampleOrder order(n, 1234);
    for (const std::int64_t epoch : {0, 1, 5}) {
      auto visited = epoch_order(order, epoch);
      std::sort(visited.begin(), visited.end());
      EXPECT_EQ(visited, identity(n)) << "n = " << n << ", epoch " << epoch;
    }
  }
}

TEST(SampleOrder, DependsOnlyOnSeedEpochAndIndex) {
  const SampleOrder a(1000, 42), b(1000, 42);
  EXPECT_EQ(epoch_order(a, 3), epoch_order(b, 3));
  // Random access agrees with sequential access.
  EXPECT_EQ(a.sample_at(3 * 1000 + 517), epoch_order(b, 3)[517]);
}

TEST(SampleOrder, DiffersBetweenEpochsAndSeeds) {
  const SampleOrder order(1000, 42);
  EXPECT_NE(epoch_order(order, 0), epoch_order(order, 1));
  EXPECT_NE(epoch_order(order, 0), epoch_order(SampleOrder(1000, 43), 0));
  EXPECT_NE(epoch_order(order, 0), identity(1000));
  // Far from the identity, not just a few swaps.
  const auto first = epoch_order(order, 0);
  std::int64_t fixed = 0;
  for (std::int64_t i = 0; i < 1000; ++i) fixed += first[i] == i;
  EXPECT_LT(fixed, 10);  // a random permutation has 1 fixed point on average
}

TEST(SampleOrder, UnshuffledIsTheIdentityEveryEpoch) {
  const SampleOrder order(7, 42, /*shuffle=*/false);
  for (std::int64_t g = 0; g < 30; ++g) EXPECT_EQ(order.sample_at(g), g % 7);
}

TEST(SampleOrder, WorkedExampleOfTheHeader) {
  const SampleOrder order(5, 7);
  EXPECT_EQ(epoch_order(order, 0), (std::vector<std::int64_t>{3, 1, 0, 2, 4}));
  EXPECT_EQ(epoch_order(order, 1), (std::vector<std::int64_t>{1, 4, 3, 2, 0}));
}

TEST(SampleOrder, RejectsBadArguments) {
  expect_contains(error_of([] { SampleOrder(0, 1); }), {"at least one sample"});
  expect_contains(error_of([] { SampleOrder(3, 1).sample_at(-1); }), {"-1"});
}

}  // namespace
}  // namespace ratrain
