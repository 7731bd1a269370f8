// idle_gaps (runtime/idle_gaps.hpp): the union of overlapping work intervals, clipping to
// the window, and the idle stretches counted against the minimum gap.
#include <gtest/gtest.h>

#include "runtime/idle_gaps.hpp"

namespace ratrain {
namespace {

TEST(IdleGaps, TheHeadersWorkedExample) {
  const IdleGaps g = idle_gaps({{70, 80}, {10, 30}, {20, 40}}, {0, 100}, 15);
  EXPECT_EQ(g.window_ns, 100u);
  EXPECT_EQ(g.busy_ns, 40u);
  EXPECT_EQ(g.count, 2);
  EXPECT_EQ(g.total_ns, 50u);
  EXPECT_EQ(g.largest_ns, 30u);
}

TEST(IdleGaps, NestedWorkAndIntervalsOutsideTheWindow) {
  // [5, 50) holds [10, 20); [90, 120) is clipped to [90, 100); [200, 300) is outside.
  const IdleGaps g = idle_gaps({{10, 20}, {5, 50}, {90, 120}, {200, 300}, {0, 2}}, {3, 100}, 1);
  EXPECT_EQ(g.busy_ns, 45u + 10u);
  EXPECT_EQ(g.count, 2);  // [3, 5) and [50, 90)
  EXPECT_EQ(g.total_ns, 2u + 40u);
  EXPECT_EQ(g.largest_ns, 40u);
}

TEST(IdleGaps, AFullyBusyAndAnIdleWindow) {
  const IdleGaps busy = idle_gaps({{0, 60}, {50, 100}}, {0, 100}, 1);
  EXPECT_EQ(busy.busy_ns, 100u);
  EXPECT_EQ(busy.count, 0);
  EXPECT_EQ(busy.largest_ns, 0u);
  const IdleGaps idle = idle_gaps({}, {10, 30}, 1);
  EXPECT_EQ(idle.busy_ns, 0u);
  EXPECT_EQ(idle.count, 1);
  EXPECT_EQ(idle.total_ns, 20u);
  EXPECT_EQ(idle_gaps({{1, 2}}, {5, 5}, 1).window_ns, 0u);  // an empty window
}

}  // namespace
}  // namespace ratrain
