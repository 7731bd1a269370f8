// The 1F1B schedule against lists written out by hand, and its invariants over a range
// of stage counts and micro-batch counts.
#include <gtest/gtest.h>

#include <algorithm>

#include "parallel/pipeline_schedule.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

TEST(OneFOneB, FourStagesSixMicroBatches) {
  EXPECT_EQ(to_string(one_f_one_b(4, 0, 6)), "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5");
  EXPECT_EQ(to_string(one_f_one_b(4, 1, 6)), "F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 B4 B5");
  EXPECT_EQ(to_string(one_f_one_b(4, 2, 6)), "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 B5");
  EXPECT_EQ(to_string(one_f_one_b(4, 3, 6)), "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5");
}

TEST(OneFOneB, FewerMicroBatchesThanStages) {
  EXPECT_EQ(to_string(one_f_one_b(4, 0, 2)), "F0 F1 B0 B1");
  EXPECT_EQ(to_string(one_f_one_b(4, 3, 2)), "F0 B0 F1 B1");
  EXPECT_EQ(to_string(one_f_one_b(1, 0, 3)), "F0 B0 F1 B1 F2 B2");
}

// Every micro-batch runs forward then backward exactly once, in micro-batch order, and
// stage s never holds more than stages - s micro-batches between forward and backward.
TEST(OneFOneB, EveryMicroBatchOnceAndBoundedInFlight) {
  using Kind = PipelineAction::Kind;
  for (int stages = 1; stages <= 8; ++stages)
    for (int stage = 0; stage < stages; ++stage)
      for (int m = 1; m <= 11; ++m) {
        const auto actions = one_f_one_b(stages, stage, m);
        ASSERT_EQ(static_cast<int>(actions.size()), 2 * m);
        int next_forward = 0, next_backward = 0, peak = 0;
        for (const PipelineAction& a : actions) {
          if (a.kind == Kind::forward) {
            EXPECT_EQ(a.micro_batch, next_forward++);
          } else {
            EXPECT_EQ(a.micro_batch, next_backward++);
            EXPECT_LT(a.micro_batch, next_forward);
          }
          peak = std::max(peak, next_forward - next_backward);
        }
        EXPECT_LE(peak, stages - stage) << stages << " stages, stage " << stage << ", " << m;
      }
}

TEST(OneFOneB, RejectsAStageOutsideThePipeline) {
  EXPECT_NE(error_of([] { one_f_one_b(2, 2, 4); }).find("stage 2 of 2"), std::string::npos);
}

}  // namespace
}  // namespace ratrain
