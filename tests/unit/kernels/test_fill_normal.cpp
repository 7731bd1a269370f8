// ops::fill_normal on the CPU: each element is the counter-based draw of its global
// position (CounterRng::normal), for the whole tensor and for a TP part, in f64 and f32;
// mean/std 1/0 fills ones; a negative std is refused.
#include <gtest/gtest.h>

#include "kernels/ops.hpp"
#include "runtime/rng.hpp"

namespace ratrain {
namespace {

// ShardSpec's worked example (model/param_store.hpp): W_in (5d, d), d = 8, TP rank 1 of 2
// holds global rows 4-7, 12-15, 20-23, 28-31, 36-39 as its local rows 0-19.
constexpr PartIndexMap kRankOneOfWin{
    .inner = 8, .local_extent = 20, .global_extent = 40, .segment_extent = 8, .begin = 4, .length = 4};

TEST(PartIndexMap, PlacesTheWorkedExample) {
  EXPECT_EQ(kRankOneOfWin.global(0), 4 * 8);
  EXPECT_EQ(kRankOneOfWin.global(5 * 8 + 3), 13 * 8 + 3);  // local row 5 -> global row 13
  EXPECT_EQ(kRankOneOfWin.global(19 * 8 + 7), 39 * 8 + 7);
  constexpr PartIndexMap whole;
  for (std::int64_t i : {0, 1, 12345}) EXPECT_EQ(whole.global(i), i);
}

TEST(FillNormal, DrawsEachElementAtItsGlobalPosition) {
  const CounterRng rng(42, "backbone.layers.0.seq_layer.in_proj.weight");
  const ops::NormalDraw draw{.seed = rng.seed(), .key = rng.key(), .std = 0.02};
  Tensor f64 = Tensor::empty({20, 8}, DType::f64), f32 = Tensor::empty({20, 8}, DType::f32);
  ops::fill_normal(f64, draw, kRankOneOfWin);
  ops::fill_normal(f32, draw, kRankOneOfWin);
  for (std::int64_t i = 0; i < f64.numel(); ++i) {
    const double expected = 0.02 * rng.normal(static_cast<std::uint64_t>(kRankOneOfWin.global(i)));
    ASSERT_EQ(f64.item(i), expected) << i;
    ASSERT_EQ(f32.item(i), static_cast<double>(static_cast<float>(expected))) << i;
  }
}

TEST(FillNormal, MeanWithZeroStdFillsExactly) {
  Tensor t = Tensor::empty({7}, DType::f32);
  ops::fill_normal(t, {.seed = 1, .key = 2, .mean = 1.0, .std = 0.0}, {});
  for (std::int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.item(i), 1.0);
}

TEST(FillNormal, RefusesANegativeStd) {
  Tensor t = Tensor::empty({3}, DType::f64);
  EXPECT_THROW(ops::fill_normal(t, {.std = -1.0}, {}), Error);
}

}  // namespace
}  // namespace ratrain
