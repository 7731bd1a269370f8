// ParallelContext::create under mpiexec: the groups a rank ends up in are exactly the
// pure layout's lists (parallel/rank_layout.hpp), for every layout that fits the world;
// the local rank comes from the shared-memory split; a layout that does not fit fails
// on every rank alike.
#include <gtest/gtest.h>

#include "parallel/parallel_context.hpp"
#include "tests/mpi/mpi_test_util.hpp"
#include "tests/unit/error_test_util.hpp"

namespace ratrain {
namespace {

TEST(ParallelContext, GroupsMatchThePureLayout) {
  const Group world = world_group();
  for (const ParallelSizes& sizes : layouts_for(world.size())) {
    const ParallelContext ctx = ParallelContext::create(world, sizes);
    const RankPlacement expected = place_rank(sizes, world.size(), world.rank());
    EXPECT_EQ(ctx.world_rank, world.rank());
    EXPECT_EQ(ctx.world_size, world.size());
    for (const Axis axis : kAxes) {
      const Group& group = ctx.group(axis);
      EXPECT_EQ(ctx.coords.of(axis), expected.coords.of(axis)) << to_string(sizes);
      EXPECT_EQ(group.rank(), expected.coords.of(axis)) << to_string(sizes);
      EXPECT_EQ(world_ranks_of(group, world.rank()), expected.group(axis))
          << to_string(sizes) << ", " << axis_name(axis) << " group of world rank " << world.rank();
    }
  }
}

// The tests run on one host, so the node is the whole world and the shared-memory
// split (keyed by rank) orders it like the world.
TEST(ParallelContext, LocalRankOnOneHostIsTheWorldRank) {
  const Group world = world_group();
  const ParallelContext ctx = ParallelContext::create(world, {.dp = world.size()});
  EXPECT_EQ(ctx.local_rank, world.rank());
}

TEST(ParallelContext, LayoutThatDoesNotFitFailsOnEveryRank) {
  const Group world = world_group();
  const std::string message =
      error_of([&] { ParallelContext::create(world, {.tp = 2 * world.size()}); });
  EXPECT_NE(message.find("needs tp*sp*pp*dp = " + std::to_string(2 * world.size()) +
                         " ranks but the world has " + std::to_string(world.size())),
            std::string::npos)
      << message;
  world.barrier();  // every rank failed before any MPI call: they are still in step
}

}  // namespace
}  // namespace ratrain
