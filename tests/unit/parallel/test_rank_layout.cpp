// The pure rank layout (parallel/rank_layout.hpp) against hand-written group lists, as
// Megatron's RankGenerator tests do, plus the partition invariants over every layout
// of small worlds and the errors that name the sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "parallel/rank_layout.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

using Groups = std::set<std::vector<int>>;

// Every distinct group of `axis` in the world of `sizes`, as place_rank reports them.
Groups groups_of(const ParallelSizes& sizes, Axis axis) {
  const int world = static_cast<int>(sizes.world());
  Groups groups;
  for (int rank = 0; rank < world; ++rank)
    groups.insert(place_rank(sizes, world, rank).group(axis));
  return groups;
}

// {{0}, {1}, ..., {world - 1}}: the groups of an axis of size one.
Groups singletons(int world) {
  Groups groups;
  for (int rank = 0; rank < world; ++rank) groups.insert({rank});
  return groups;
}

TEST(RankLayout, WorkedExampleOfTheHeader) {
  const RankPlacement p = place_rank({.tp = 2, .sp = 2, .pp = 2, .dp = 1}, 8, 5);
  EXPECT_EQ(p.coords.dp, 0);
  EXPECT_EQ(p.coords.pp, 1);
  EXPECT_EQ(p.coords.sp, 0);
  EXPECT_EQ(p.coords.tp, 1);
  EXPECT_EQ(p.group(Axis::tp), (std::vector<int>{4, 5}));
  EXPECT_EQ(p.group(Axis::sp), (std::vector<int>{5, 7}));
  EXPECT_EQ(p.group(Axis::pp), (std::vector<int>{1, 5}));
  EXPECT_EQ(p.group(Axis::dp), (std::vector<int>{5}));
}

TEST(RankLayout, EightRanksTp2Sp2Pp2) {
  const ParallelSizes sizes{.tp = 2, .sp = 2, .pp = 2, .dp = 1};
  EXPECT_EQ(groups_of(sizes, Axis::tp), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(groups_of(sizes, Axis::sp), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(groups_of(sizes, Axis::pp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(groups_of(sizes, Axis::dp), singletons(8));
}

TEST(RankLayout, EightRanksTp2Pp2Dp2) {
  const ParallelSizes sizes{.tp = 2, .sp = 1, .pp = 2, .dp = 2};
  EXPECT_EQ(groups_of(sizes, Axis::tp), (Groups{{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
  EXPECT_EQ(groups_of(sizes, Axis::sp), singletons(8));
  EXPECT_EQ(groups_of(sizes, Axis::pp), (Groups{{0, 2}, {1, 3}, {4, 6}, {5, 7}}));
  EXPECT_EQ(groups_of(sizes, Axis::dp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
}

TEST(RankLayout, EightRanksTp4Dp2) {
  const ParallelSizes sizes{.tp = 4, .sp = 1, .pp = 1, .dp = 2};
  EXPECT_EQ(groups_of(sizes, Axis::tp), (Groups{{0, 1, 2, 3}, {4, 5, 6, 7}}));
  EXPECT_EQ(groups_of(sizes, Axis::dp), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  EXPECT_EQ(groups_of(sizes, Axis::sp), singletons(8));
  EXPECT_EQ(groups_of(sizes, Axis::pp), singletons(8));
}

TEST(RankLayout, FourRanksDp2Sp2) {
  const ParallelSizes sizes{.tp = 1, .sp = 2, .pp = 1, .dp = 2};
  EXPECT_EQ(groups_of(sizes, Axis::sp), (Groups{{0, 1}, {2, 3}}));
  EXPECT_EQ(groups_of(sizes, Axis::dp), (Groups{{0, 2}, {1, 3}}));
  EXPECT_EQ(groups_of(sizes, Axis::tp), singletons(4));
  EXPECT_EQ(groups_of(sizes, Axis::pp), singletons(4));
  const RankPlacement p = place_rank(sizes, 4, 3);
  EXPECT_EQ(p.coords.dp, 1);
  EXPECT_EQ(p.coords.sp, 1);
}

TEST(RankLayout, FourPipelineStages) {
  const ParallelSizes sizes{.tp = 1, .sp = 1, .pp = 4, .dp = 1};
  EXPECT_EQ(groups_of(sizes, Axis::pp), (Groups{{0, 1, 2, 3}}));
  for (const Axis axis : {Axis::tp, Axis::sp, Axis::dp})
    EXPECT_EQ(groups_of(sizes, axis), singletons(4)) << axis_name(axis);
  EXPECT_EQ(place_rank(sizes, 4, 2).coords.pp, 2);
}

TEST(RankLayout, OneRankIsItsOwnGroupOnEveryAxis) {
  const RankPlacement p = place_rank({}, 1, 0);
  for (const Axis axis : kAxes) EXPECT_EQ(p.group(axis), (std::vector<int>{0})) << axis_name(axis);
}

// Every layout of worlds up to 16 ranks: each axis's groups partition the world, list
// ascending ranks, have the axis size, place a rank at its coordinate, and the
// coordinates give back the rank by the layout formula.
TEST(RankLayout, GroupsOfEveryAxisPartitionTheWorld) {
  int layouts = 0;
  for (int world = 1; world <= 16; ++world) {
    for (int tp = 1; tp <= world; ++tp) {
      for (int sp = 1; tp * sp <= world; ++sp) {
        for (int pp = 1; tp * sp * pp <= world; ++pp) {
          if (world % (tp * sp * pp) != 0) continue;
          const ParallelSizes sizes{.tp = tp, .sp = sp, .pp = pp, .dp = world / (tp * sp * pp)};
          ++layouts;
          for (const Axis axis : kAxes) {
            std::vector<int> times_seen(world, 0);
            for (const std::vector<int>& group : groups_of(sizes, axis)) {
              EXPECT_EQ(static_cast<int>(group.size()), sizes.of(axis)) << to_string(sizes);
              EXPECT_TRUE(std::is_sorted(group.begin(), group.end())) << to_string(sizes);
              for (const int rank : group) ++times_seen[rank];
            }
            EXPECT_EQ(times_seen, std::vector<int>(world, 1))
                << to_string(sizes) << " axis " << axis_name(axis);
          }
          for (int rank = 0; rank < world; ++rank) {
            const RankPlacement p = place_rank(sizes, world, rank);
            const RankCoords& c = p.coords;
            EXPECT_EQ(((c.dp * pp + c.pp) * sp + c.sp) * tp + c.tp, rank) << to_string(sizes);
            for (const Axis axis : kAxes)
              EXPECT_EQ(p.group(axis)[c.of(axis)], rank) << to_string(sizes) << " rank " << rank;
          }
        }
      }
    }
  }
  EXPECT_EQ(layouts, 204);  // sum over worlds 1..16 of their ordered 4-factorizations
}

TEST(RankLayout, ErrorsNameTheSizes) {
  std::string message = error_of([] { place_rank({.tp = 2, .sp = 2}, 8, 0); });
  EXPECT_NE(message.find("tp=2 sp=2 pp=1 dp=1 needs tp*sp*pp*dp = 4 ranks but the world has 8"),
            std::string::npos)
      << message;
  message = error_of([] { require_layout_fits({.tp = 0}, 1); });
  EXPECT_NE(message.find("tp must be in [1, 32768] (got 0)"), std::string::npos) << message;
  message = error_of([] { require_layout_fits({.dp = -2}, 1); });
  EXPECT_NE(message.find("dp must be in [1, 32768] (got -2)"), std::string::npos) << message;
  message = error_of([] { place_rank({.pp = 2}, 2, 2); });
  EXPECT_NE(message.find("world rank 2 is outside a world of 2 ranks"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace ratrain
