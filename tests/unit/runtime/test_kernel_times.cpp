// KernelTimes and display_kernel_name (runtime/kernel_times.hpp): GPU time summed by
// kernel name, heaviest first, and kernel symbols shortened for reading.
#include <gtest/gtest.h>

#include "runtime/kernel_times.hpp"

namespace ratrain {
namespace {

TEST(KernelTimes, SumsByNameHeaviestFirst) {
  KernelTimes times;
  times.add("gemm", 30);
  times.add("scan", 50);
  times.add("gemm", 40);
  times.add("rope", 50);
  const std::vector<KernelTime> sorted = times.heaviest_first();
  ASSERT_EQ(sorted.size(), 3u);
  EXPECT_EQ(sorted[0].name, "gemm");
  EXPECT_EQ(sorted[0].calls, 2);
  EXPECT_EQ(sorted[0].total_ns, 70u);
  // Equal totals in name order.
  EXPECT_EQ(sorted[1].name, "rope");
  EXPECT_EQ(sorted[2].name, "scan");
  EXPECT_EQ(sorted[2].calls, 1);
}

TEST(KernelTimes, MergeAddsCallsAndTime) {
  KernelTimes a, b;
  a.add("gemm", 10);
  b.add("gemm", 5);
  b.add("memset", 2);
  a.merge(b);
  const std::vector<KernelTime> sorted = a.heaviest_first();
  ASSERT_EQ(sorted.size(), 2u);
  EXPECT_EQ(sorted[0].calls, 2);
  EXPECT_EQ(sorted[0].total_ns, 15u);
  EXPECT_EQ(sorted[1].name, "memset");
  EXPECT_TRUE(KernelTimes().empty());
}

TEST(KernelTimes, DisplayNameDropsReturnTypeNamespacesAndParameters) {
  // void ratrain::cuda::(anonymous namespace)::scale<4>(float*, int)
  EXPECT_EQ(display_kernel_name("_ZN7ratrain4cuda12_GLOBAL__N_15scaleILi4EEEvPfi"), "scale<4>");
  // void ratrain::cuda::(anonymous namespace)::kern<4, float>(
  //     ratrain::cuda::(anonymous namespace)::P<4, float>, float*, int)
  EXPECT_EQ(display_kernel_name("_ZN7ratrain4cuda12_GLOBAL__N_14kernILi4EfEEvNS1_1PIXT_ET0_EEPfi"),
            "kern<4, float>");
  // Not mangled: as given.
  EXPECT_EQ(display_kernel_name("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n"),
            "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n");
}

}  // namespace
}  // namespace ratrain
